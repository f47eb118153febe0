// Package optimizer is loopgate's slow loop: every period it reads a window
// of attempt statistics from the warehouse, estimates how each orchestrator
// performs for each demand class and client region, allocates the observed
// demand between them to trade cost against SLO misses, and publishes the
// result as a versioned event.Policy (traffic shares, ejections) that the
// routers apply. It also serves the two advisor endpoints stock go-livepeer
// gateways can be pointed at.
//
// The package consumes two small interfaces it defines, a StatsReader
// (*warehouse.Store satisfies it: its Stats reads the attempts_10s rollup
// into event.AttemptStats rows) and a Publisher (the policy log and the
// policies table, handed the policy and its one encoding), plus the
// configured fleet (Catalog: the binary's one orchestrators list, in the
// fleet vocabulary of package event) and the clock of its deps.Deps: every window, timestamp,
// cooldown and version comes from that clock, so a simulator can drive it in
// virtual time by calling Step. Given the same statistics, catalog, clock
// and knob, a round computes the same policy.
//
//	opt, err := optimizer.New(cfg, stats, publisher, deps.Deps{Logger: logger, Registerer: reg},
//		optimizer.WithLastVersion(lastVersion), // highest version ever published
//		optimizer.WithShed(store))              // requests refused at the edge: demand admission hid
//	if err != nil { ... }
//	mux.Handle("/orchestrators/", opt.AdvisorHandler())
//	mux.Handle("GET /frontier", opt.FrontierHandler())          // the latest λ sweep
//	mux.Handle("GET /frontier/preview", opt.PreviewHandler())  // ?lambda=0.2: what would change
//	_ = opt.SetLambda(0.8)  // the operator's knob, at any time
//	err = opt.Run(ctx)      // a round now, then every cfg.Period; nil on cancel
//
// # Estimation
//
// Statistics (one Stat per orchestrator × class × client region) are pooled
// in three levels, each shrunk toward the next, so sparse data neither makes
// a champion nor dooms a newcomer:
//
//   - Success probability p: Beta-smoothed. For (orchestrator, class),
//     p = (successes + m·w) / (judged + w) with weight w =
//     Prior.SuccessWeight (10) and prior mean m = Prior.SuccessMean (0.9)
//     for an orchestrator without attempts, else (empirical Bayes) the
//     class's pooled rate less half its failure rate. Per client region the
//     cell is shrunk the same way toward the orchestrator's other regions.
//     Judged attempts exclude client errors (4xx) and cancellations; busy
//     answers count as failures here. In a fleet at 0.95, 3 successes of 3
//     give 0.94 and 950 of 1000 give 0.95.
//   - Latency: a lognormal fitted to the successful attempts' quantiles
//     (μ from p50, σ by least squares on p90/p95/p99), shrunk in (μ, σ)
//     with weight Prior.LatencyWeight (20 successes) toward the
//     orchestrator's pooled regions, then the class, then a default
//     median of Prior.LatencyMedian × SLO with σ = Prior.LatencySigma.
//   - Cost of a request: catalog price × the class's Units, else the
//     observed billed cost per attempt, else the class median.
//   - Capacity: the catalog's MaxInFlight (else Capacity.DefaultMaxInFlight)
//     concurrent requests. An orchestrator answering busy to more than
//     Capacity.BusyRate of its attempts is full at its observed load, which
//     becomes its capacity for Capacity.Memory.
//   - Demand of (class, region): attempts per second in the window.
//
// # Objective
//
// A request of class c from region r sent to orchestrator o at utilisation
// ρ costs, with the operator's knob λ ∈ [0, 1],
//
//	k(ρ) = (1−λ)·price_oc + λ·value_c·(1 − p·T(ρ))
//
// where T(ρ) = Pr[W(ρ) + S ≤ SLO_c] is the probability of answering on
// time: S the fitted lognormal latency, W the M/M/c waiting time at
// utilisation ρ with the orchestrator's concurrency (Erlang C; omitted with
// Solver.Queueing false). λ = 0 minimises what is paid, λ = 1 the expected
// value lost to misses, and λ = ½ is half the plain expected loss price +
// value × P(miss); each weight is kept ≥ 0.001 so the other criterion breaks
// ties. The allocation x (requests per second on each arc) minimises
//
//	F(x) = Σ_arcs x·k(ρ_o) + Σ_o Spread·K·slots_o·ρ_o²/2 + Σ_rows M·u
//
// with ρ_o = Σ x·E[S]/slots_o, a small congestion premium (K is the round's
// mean cost per server-second) that makes equal orchestrators share load
// equally, and u the demand beyond every orchestrator's capacity at
// Capacity.Utilisation, priced at a big M.
//
// # Solver: Frank–Wolfe over an LP
//
// F is convex but not linear: the miss probability grows with load. It is
// minimised by pairwise Frank–Wolfe (conditional gradient), whose every
// step solves the linear program of the current marginal costs g
// (∂F/∂x, which includes the extra queueing the request inflicts on the
// orchestrator's other requests):
//
//	minimise    Σ_a g_a·y_a + Σ_k M_k·u_k
//	subject to  Σ_{a ∈ row k} y_a + u_k = rest_k        every (class, region)
//	            Σ_{a at o} E[S_a]·y_a ≤ rem_o            every orchestrator
//	            y, u ≥ 0
//
// with gonum's simplex (optimize/convex/lp). When no capacity binds it is
// each row's cheapest arc; otherwise capacity rows are added for the
// orchestrators that are full or would overflow, dominated arcs are pruned,
// the right-hand side is perturbed to avoid degenerate cycling, a greedy
// crash basis starts the simplex close to the optimum, and a pivot budget
// guards against a runaway solve (a failed LP falls back to a greedy
// vertex, counted in loopgate_optimizer_lp_failures_total). The allocation
// is kept as a convex combination of the LP vertices; each iteration moves
// weight from the worst active vertex to the new one by exact line search,
// so every iterate respects capacity. The loop stops when the duality gap
// is under Solver.Tolerance of F above its zero-load lower bound, or after
// Solver.MaxIterations. A round for 100 orchestrators × 10 classes × 4
// regions takes about 0.4 s at 60% load and 1.3 s at 90% (see BenchmarkStep).
//
// gonum's simplex is dense, (rows + capped orchestrators) × (arcs + rows):
// at 100 orchestrators × 100 classes × 8 regions it took 3 s and 1.1 GB a
// round. Above 2,000 arcs (exactLPArcs in lagrange.go) the linear program
// is therefore solved by pricing capacity instead: projected subgradient
// ascent with Polyak steps on its Lagrangian dual (prices π per
// orchestrator; for given π every row takes its arc of least g + π·w, so
// each step is linear in the arcs), and a feasible vertex built from the
// prices by a regret-ordered greedy fill. The dual is a lower bound, so
// their difference certifies the answer and is added to the Frank–Wolfe
// gap; prices carry over between iterations. TestPricedMatchesExact
// compares it with the exact simplex on 60 random small rounds: on average
// 0.6 % of the objective's changeable part above, 57 % at worst (an
// overloaded fleet of four orchestrators, where the greedy strands
// capacity). Above exactLPArcs pricing also stops after 50 subgradient
// steps (warm prices), and the Frank–Wolfe step is the root of the
// directional derivative (linesearch.go: a Newton trial, then Illinois
// regula falsi), where each orchestrator's on-time curves are read as one
// weighted sum, so a trial costs O(orchestrators) rather than a pass over
// every arc; curve points are computed when first read, by 12-point
// Gauss–Legendre quadrature over a tabulated normal CDF (queue.go:
// onTimeGauss, normalTable; more accurate than the 24-point midpoint rule
// for σ ≥ 0.2, TestOnTimeGaussAccuracy); the per-orchestrator and per-row
// loops (gradient, line-search sums, pricing's cheapest arcs) run in two
// fixed halves on two goroutines, joined inside the call, with sums kept
// serial, so the numbers do not depend on scheduling; and the loop also
// stops when F has stalled (stallTol: less than 0.2 % of its changeable
// part over two iterations), since pricing's certificate keeps the gap
// near the tolerance. At or below it the solver is unchanged (golden
// section, 200 pricing steps, the midpoint rule), so small rounds allocate
// exactly as before. BenchmarkStepScale gives its growth to 5,000
// orchestrators.
//
// # Exploration, ejection, shares
//
// Every eligible orchestrator keeps min(Exploration, MaxExploration/n) of
// each (class, region) it serves (2% by default), reserved before the
// solve, so a recovered or new one is observed again and can earn more.
// An orchestrator whose smoothed failure rate (errors, timeouts, refusals;
// same prior) exceeds Ejection.FailureRate over at least
// Ejection.MinAttempts judged attempts is ejected for Ejection.Cooldown
// (at most Ejection.MaxFraction of the fleet, the worst first): share 0,
// listed in the policy's ejections with a reason such as "failure rate
// 0.61 over 83 attempts in 1m0s". After the cooldown it is back with its
// exploration share. Demand beyond capacity is spread in proportion to
// capacity. Shares move on evidence (damp.go): unless the solution beats
// the last published policy's shares, re-priced on this round's
// estimates, by 1 % of F, each entry moves only ShareStep (0.5) of the way
// toward it, so estimate noise between near-equal orchestrators does not
// swing a region's traffic; an ejection, a λ moved by the operator and a
// clear gain apply at once. Each entry's shares are rounded to 1e-6 and sum to 1; each
// carries a reason. A class also gets a region-less entry (for regions
// without their own): the demand-weighted blend of its regions, or, with no
// demand at all, the floors and the rest to the lowest marginal cost.
//
// A policy names every serving orchestrator in every entry, so it grows with
// the fleet; it has its own bound, event.MaxPolicyEncodedSize (4 MiB, above
// the outcomes' 256 KiB), which the policy topic is created to accept
// (eventlog.PolicyMaxMessageBytes). When a fleet's policy would exceed it it is trimmed, in this
// order, until it fits: the ejected (zero) shares, the reasons of the
// exploration floors, the frontier (informational, about 1 KB, and still
// served by /frontier: it goes before anything that changes routing), the
// floors themselves (the rest renormalised; the router's own exploration
// still reaches them), every reason. The size is exported as
// loopgate_optimizer_policy_bytes and a trim is logged.
//
// # Shaping
//
// Every policy also carries workload shaping (shaping.go, ShapingConfig):
// each class entry's Value (USD per SLO miss) and SLOMs, which order and
// bound the router's edge queue; a concurrency limit per orchestrator
// that advertises its concurrency,
// limit = max(1, min(slots + q, ⌊μ·T⌋)) with μ = slots / mean latency and T
// the tightest SLO it serves (Little's law: N in flight wait about N/μ;
// q = 1 queued beyond its slots, when its wait 1/μ fits in every class's
// SLO − p95 latency, keeps a freed server busy while the router hands its
// slot on);
// and, when the fleet's capacity (Utilisation × slots server-seconds per
// second, handed out as a maximum flow in order of value: flow.go) cannot
// carry the demand a class is offered (its attempts plus the requests its
// admission rate refused, WithShed) after the classes of higher value took theirs,
// an admission rate for it per client region (what it got ÷ its mean
// latency, split by regional demand), lifted as soon as its offered demand
// fits. Every limit and rate carries its reason.
//
// # The cost/latency frontier
//
// After its solve, every round predicts what it would have achieved at
// other values of the knob, on the same estimates: λ = 0, Frontier.Points
// (10) values log-spaced from Frontier.MinLambda (0.01) to 1, and its own
// λ. The problem is re-weighed (only the arcs' costs, the congestion
// premium and the overflow prices depend on λ; demand, floors, capacities
// and on-time curves do not) and solved by the same Frank–Wolfe loop,
// warm-started from the neighbouring λ's vertices (the feasible set does
// not depend on λ), outward from the round's own λ, in at most
// Frontier.MaxIterations (10) iterations, with the greedy vertex instead
// of the capacity LP when capacity binds. The round's own λ is the
// published solution itself. The points are stored in the policy
// (event.Policy.Frontier) and served by Frontier and FrontierHandler
// (GET /frontier); Preview and PreviewHandler (GET
// /frontier/preview?lambda=x) answer one λ on the latest round's problem
// the way the sweep does — a swept λ is the frontier's own point, another
// λ is solved warm-started from the nearest swept one — and list the
// shares that would move by more than Frontier.MoveThreshold (0.01),
// publishing nothing.
//
// The prediction for an allocation, over the (class, client region) rows
// with demand d, each orchestrator o of a row at its policy share s_o
// (floors and spread overflow included), with the row's estimates p_o
// (success of an attempt), T_o (on time at the planned utilisation ρ_o,
// the solver's own curve), c_o (price × units) and β_o (the fraction of
// its attempts billed, from the window's billed attempts, shrunk toward
// p_o):
//
//	realised share    r_o = s_o·b_o / Σ s·b, b_o the bend (below)
//	cost per request  Σ_rows d·C_row / Σ d,  C_row = Σ_o r_o·β_o·c_o · (2 − Σ_o r_o·p_o)
//	SLO attainment    Σ_rows d·O_row·(1 + Σ_o r_o·(1 − p_o)·φ_o) / Σ d,  O_row = Σ_o r_o·p_o·T_o
//	p95 latency       the 0.95 quantile of the mixture, weights d·r_o·p_o, of
//	                  lognormals moment-matched to W_o + S_o (M/M/c wait at ρ_o
//	                  plus the fitted latency)
//
// The bend b_o corrects for the router, which does not follow shares
// exactly (its fast loop weighs them by fresh latency, in-flight load and
// failures, and explores): it is the share of the row's attempts o
// received in the window over the mean share the policies published in
// the window gave it, (attempts_o + 1) / (planned_o·attempts_row + 1); 1
// without history. The factor (2 − P) bills one retry of a failed first
// attempt, drawn from the same shares; the retry after a fast failure
// (share φ_o of o's failures: those not billed, 1 − (β_o − p_o)/(1 − p_o))
// is on time as often as a first attempt, a slow failure's never.
//
// What the model ignores: retries beyond the first; that the fast loop
// would bend another allocation differently from the current one (the
// bends are the current allocation's: a first-order model); hedges;
// queueing beyond M/M/c at the planned utilisation (bursts, the real
// service-time distribution, the orchestrator's own queue already in the
// observed latencies, overload beyond capacity, which the shares spread
// but ρ does not show); exploration beyond what the bends see; the
// estimates' own error (a window of 60 s, shrunk toward priors, the
// success prior deliberately pessimistic); and change within the window.
// docs/BENCHMARKS.md ("Frontier: predicted vs measured") measures how far
// this carries on the simulator's scenarios.
//
// The sweep's cost: BenchmarkStep runs each fleet with and without it
// (Frontier.Points 0). On the 2-core benchmark machine a round takes
// 0.35 s → 0.38 s (4 of 10 classes served, load 0.6), 0.34 s → 0.56 s
// (10 of 10, load 0.6) and 0.92 s → 1.09 s (10 of 10, load 0.9): at most
// 1.7× the round without it. A preview of the largest fleet costs about
// one round's solve (BenchmarkPreview).
//
// Versions strictly increase: above the last version published (asked once
// through WithLastVersion), the previous one and the clock in Unix ms. A
// failed publish is logged and counted; the next period publishes a newer
// policy.
//
// # Standby: one active optimizer, others waiting
//
// With Config.Standby (optimizer.standby: true) several replicas run and
// one computes: RunStandby runs rounds only while this replica holds a
// Lease, and waits otherwise. The binary's lease is eventlog.Lease: Kafka
// group membership of Lease.Group on a one-partition topic, whose holder
// is the member assigned partition 0 (the group keeps it with its holder
// when another member joins). Kafka was chosen over a lease row in
// ClickHouse because the coordinator already does what a lease needs —
// liveness by heartbeat, a single owner per generation, a generation id
// that grows with every change — and the policy log the optimizer
// publishes to lives there too; a ClickHouse row would need
// compare-and-set, which ClickHouse does not offer.
//
// Takeover: when the holder dies, the coordinator drops it after
// Lease.SessionTimeout (default 6s) and gives the lease to a standby, which
// runs a round at once: about SessionTimeout + HeartbeatInterval, within
// two periods at the default 5s period (a clean stop leaves the group and
// hands over at once). Keep SessionTimeout + HeartbeatInterval below two
// periods when changing either.
//
// Versions: no two policies carry one version. On each takeover the new
// holder asks its version source again (the binary reads the newest policy
// on the policy log and in the policies table), so it numbers above
// everything its predecessor published; and every version it uses is
// ≡ epoch (mod 1024), epoch being the group generation, so an old holder
// that has not yet noticed it lost the lease (for up to about one
// heartbeat) cannot publish a version the new one uses.
//
// # Metrics
//
// Registered on the injected registerer:
//
//	loopgate_optimizer_runs_total{result}                         rounds: ok, stats_error, publish_error, invalid
//	loopgate_optimizer_run_duration_seconds                       histogram of a round on the injected clock
//	loopgate_optimizer_policy_version                             last version published
//	loopgate_optimizer_leader                                     1 while running rounds (standby: while holding the lease)
//	loopgate_optimizer_lease_epoch                                the standby lease's epoch held or last held
//	loopgate_optimizer_policy_bytes                               encoded size of the last policy
//	loopgate_optimizer_publish_errors_total                       failed publishes
//	loopgate_optimizer_ejected_orchestrators                      orchestrators ejected now
//	loopgate_optimizer_ejections_total                            ejections made
//	loopgate_optimizer_lambda                                     the knob of the last round
//	loopgate_optimizer_demand_requests_per_second                 demand in the window
//	loopgate_optimizer_unserved_ratio                             demand beyond capacity / demand
//	loopgate_optimizer_solver_iterations                          Frank–Wolfe iterations of the last round
//	loopgate_optimizer_lp_failures_total                          LPs replaced by the greedy fallback
//	loopgate_optimizer_orchestrator_success_probability{orchestrator}  smoothed, pooled
//	loopgate_optimizer_orchestrator_share{orchestrator}           planned fraction of all demand
//	loopgate_optimizer_orchestrator_utilisation{orchestrator}     planned utilisation
//
// Per-orchestrator series exist for catalog orchestrators only and are
// deleted when they leave the catalog.
package optimizer
