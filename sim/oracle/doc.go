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
// Demand d[c,r] is Σ over clients in region r of rate × mix[c], the rate
// being what the scenario's gateway lets through its rate limits
// (gateway.go: the bench puts the gateway in front of every policy). An
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
// # Shedding
//
// The overflow u[c,r] is demand the allocation does not route. With
// Config.Shed (the default) the oracle refuses it at arrival, as
// loopgate's edge may, and it costs what a shed costs every policy under
// the benchmark's loss rules: K[c] = value_c (a missed SLO, nothing
// billed). The LP then sheds where serving costs more — beyond the
// capacity at the utilisation cap, and in bands or from regions whose
// price plus expected miss exceeds value_c — and, because every class
// competes for the same capacity rows, it sheds the cheapest classes
// first: capacity is saved for the valuable ones. The policy refuses each
// arrival of (c, r) with probability ShedFraction = u[c,r] / d[c,r] and
// shares the routed rest (Shares). The demand of an on/off client is its
// long-run rate for this (the fluid model sees rates; a burst is for
// queues to absorb): the shares come from a second solve at the clients'
// peak rates without shedding, which spreads a burst over the fleet.
// Per request, the oracle policy also refuses an arrival that no
// orchestrator can answer within its SLO at its true queue for more than
// its price (OnTimeOdds; see sim.Oracle).
//
// # Infeasibility
//
// Without shedding, when demand exceeds what the available eligible
// orchestrators can take at the utilisation cap, the overflow u[c,r]
// absorbs the rest at a cost K[c] = value_c + the dearest band cost of c,
// which is higher than any band, so the LP always has a solution and uses
// every bit of capacity first. Shares route the overflow anyway, spread
// over the eligible available orchestrators in proportion to their
// capacity (it is better to queue than to fail at the edge); only a
// (class, region) with no eligible available orchestrator at all gets no
// shares.
//
// # What the oracle knows and assumes
//
// It knows the truth at every timeline state: each orchestrator's
// capacity, failure rate and mode, down and hang, each offer's price and
// service-time distribution, the rtt between regions, and the demand per
// (class, region). It assumes a fluid, stationary system between changes
// (rates, not requests), M/M/c waiting at the band edges, no retries and
// no finite queue, and it re-solves at each change with no warning ahead
// of it. It is a strong reference, not a bound: a per-request adaptive
// policy can beat it on tails and on the transients the fluid model does
// not see, and under overload on what it sheds: it refuses all demand
// beyond the utilisation cap, where a full fleet with short queues and an
// edge that sheds per request serves some of it in time (on overload
// loopgate's loss is below the oracle's).
//
// # Solving at scale
//
// The LP has one column per (class, region, orchestrator, band): at 200
// orchestrators × 5 classes × 8 regions × 4 bands about 30,000 columns
// and 40 + 800 rows. gonum's dense simplex solves with a dense 840 × 840
// basis from scratch several times per pivot and turns to Bland's rule on
// degenerate pivots; it did not finish in 11 minutes at that size. The LP's
// structure makes it easy for an interior point method instead: every
// column has one 1 in its demand row and its work in one capacity row, so
// in the normal equations A·D·Aᵀ the capacity block is diagonal, and
// eliminating it leaves a dense Schur complement over the demand rows only
// (classes × regions with demand, at most 40 here). Solve (Method IPM,
// the default) runs Mehrotra's predictor-corrector on that system: each
// iteration costs Σ_bands |columns of the band|² ≤ bands × rows² plus two
// passes over the columns, linear in the number of orchestrators, and
// converges in a few dozen iterations whatever the degeneracy (ties,
// hung or down orchestrators, overload) that makes a simplex stall.
//
// It solves the same LP, so the formulation above is unchanged; the only
// loss is the stopping tolerance. It stops when the scaled primal and
// dual residuals are within 1e-10 of 1 + ‖b‖∞ and 1 + ‖c‖∞ and the
// relative duality gap is within 1e-10; the answer is then polished to be
// exactly feasible (rates below 1e-9 of their demand dropped, a band loaded
// past its capacity scaled down, the rest of the demand put on the
// overflow). Optimality gap: on 380 small instances (150 random fleets,
// 16 states of generated 8-region, 5-class fleets of 10 and 20
// orchestrators, and every timeline state of the public scenarios, each
// with and without queueing) the polished objective is within 3.6e-8 (relative) of the
// exact simplex vertex (Method Simplex), and TestIPMMatchesSimplex keeps
// it within 1e-7. Among tied optima the interior point method returns a
// point inside the optimal face (it spreads over ties) where the simplex
// returns a vertex; objectives agree, shares may differ.
//
// Measured on the 2-core development machine (BenchmarkSolve, generated
// fleets of sim/fleetgen, 8 regions, 5 classes, the default 4 bands):
// 10 orchestrators 4.8 ms (simplex 39 ms), 50 orchestrators 25 ms
// (simplex 0.78 s), 200 orchestrators 0.12 s, about half of it computing
// the band costs (the M/M/c miss curve by quadrature) and half the
// interior point iterations.
//
// When the interior point method does not converge (it has not on any
// instance tried) a problem of at most 2,000 columns falls back to the
// simplex; a larger one returns an error.
package oracle
