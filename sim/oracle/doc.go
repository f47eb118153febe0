// Package oracle computes the fluid allocation that the benchmark's oracle
// policy routes by: with the true parameters of every orchestrator, how many
// requests per second of each (class, client region) to send to each
// orchestrator so that the expected cost plus the expected value of SLO
// misses is smallest, under capacity limits.
//
//	alloc, err := oracle.Solve(sc, &state, oracle.DefaultConfig())
//	shares := alloc.Shares(class, region) // fraction of (class, region) per orchestrator
//
// # Formulation
//
// Demand d[c,r] is Σ over clients in region r of rate × mix[c]. An
// orchestrator o is available if it is neither down nor hung, and eligible
// for c if it also serves c. Each orchestrator's capacity is cut into
// utilisation bands 0 < ρ₁ < … < ρ_B = Config.Utilisation (default 0.5, 0.7,
// 0.8, 0.9). The linear program has one variable x[c,r,o,b] ≥ 0 per eligible
// orchestrator and band (requests per second) and an overflow u[c,r] ≥ 0:
//
//	minimise   Σ x[c,r,o,b]·k[c,r,o,b] + Σ u[c,r]·K[c]
//	subject to Σ_{o,b} x[c,r,o,b] + u[c,r] = d[c,r]                 every (c, r)
//	           Σ_{c,r} x[c,r,o,b]·E[S_oc]·l_o ≤ capacity_o·(ρ_b − ρ_{b−1})  every (o, b)
//
// where E[S_oc] = p50·exp(σ²/2) is the mean lognormal service time and l_o is
// the share of attempts that occupy a server (1 − fail for fast failures,
// which answer without service; 1 for slow ones). The cost of a request in
// band b is
//
//	k = price·units·billed_o + value_c·m_b
//
// with billed_o = 1 − fail for fast failures (not billed) and 1 for slow
// ones, and m_b the marginal expected miss rate of band b:
//
//	m_b = (ρ_b·P(ρ_b) − ρ_{b−1}·P(ρ_{b−1})) / (ρ_b − ρ_{b−1})
//	P(ρ) = 1 − (1 − fail)·Pr[rtt(r,o) + W(ρ) + S_oc ≤ slo_c]
//
// so that Σ_b (band load)·m_b is the expected number of misses of an
// orchestrator run at utilisation ρ: ρ·P(ρ). Because ρ·P(ρ) grows convexly
// with ρ, the bands' costs increase and the LP fills them in order; the piecewise
// linear objective is the exact interpolation of the convex miss curve at
// the band edges.
//
// Queueing is approximated, not ignored: W(ρ) is the M/M/c waiting time at
// utilisation ρ (Erlang C probability C(c, cρ) of waiting, then exponential
// with rate c·(1−ρ)/E[S]), using the class's own mean service time. The
// lognormal service, the finite queue (and its 503s) and retries after a
// failure are outside the model; with Config.Queueing false, W = 0 and a
// single band [0, Utilisation] is used (the plain formulation).
//
// # Infeasibility
//
// When demand exceeds what the available eligible orchestrators can take at
// the utilisation cap, the overflow u[c,r] absorbs the rest at a cost
// K[c] = value_c + the dearest band cost of c, which is higher than any band,
// so the LP always has a solution and uses every bit of capacity first.
// Shares route the overflow anyway, spread over the eligible available
// orchestrators in proportion to their capacity (it is better to queue than
// to fail at the edge); only a (class, region) with no eligible available
// orchestrator at all gets no shares.
//
// The LP is solved with gonum's Simplex (optimize/convex/lp); the slack
// columns give a feasible starting basis, so phase I is skipped.
package oracle
