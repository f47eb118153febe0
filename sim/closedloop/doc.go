// Package closedloop is the product's routing policy in the simulator: the
// policy `loopgate bench` reports as "loopgate". It runs loopgate's two
// loops in virtual time, joined only through the real data path:
//
//   - the fast loop is the router's own code: candidates from
//     router.Tracker.CandidateOf (peak-EWMA latency with freshness,
//     consecutive-failure ejection, in-flight limits, policy ejections),
//     the draw router.Choose (never a panic pick of an ejected
//     orchestrator while a healthy one is only at its limit), a per-attempt
//     timeout from each orchestrator's latency for the class
//     (router.TimeoutConfig, Config.AttemptTimeout), retries that wait at
//     the edge when every orchestrator left is at its limit, as the
//     router's proxy does, and the policy resolved through
//     router.NewPolicyIndex and router.Shares, exactly as the router's
//     tables resolve it; workload shaping through the router's types
//     (shaping.go): a router.Limiter per orchestrator under the policy's
//     limit, router.Admission for its admission rates, and the edge queue
//     router.EdgeQueue ranked by router.QueueTerms, a freed slot handed to
//     the first waiter (sim.Fleet.Wake) as the router's release does;
//     shed requests are written as outcomes with status shed;
//   - every finished request becomes an event.Outcome, written with
//     warehouse.WriteOutcomes into an embedded ClickHouse (chDB) every
//     virtual second (the ingest consumer's batching);
//   - the slow loop is the real optimizer: optimizer.Step every period on
//     the virtual clock, reading the attempts_10s rollup through
//     warehouse.Store.Stats, and publishing its policy straight to the fast
//     loop (in production it goes through the policy log).
//
// Kafka is left out: in virtual time there is no concurrency for it to
// absorb, and the warehouse writer is the one ingest uses.
//
// The policy knows only what a deployed loopgate would know:
//
//   - the optimizer's catalog is what discovery reports
//     (scenario.Advertised): ids, regions, prices and each orchestrator's
//     advertised capacity per model as at the start — its servers, not its
//     queue, and static, as go-livepeer's capabilities are. It is
//     refreshed every Config.Discovery (prices), never at a timeline
//     instant; down, hung, failing or slower orchestrators, and capacity
//     lost to a fault, are learned from outcomes only;
//   - an optimizer step takes time: Config.StepTime models it
//     deterministically from orchestrators × classes × client regions
//     (fitted to measured step times), and the policy computed from the
//     window ending at t reaches the fast loop at t + that time; a step
//     longer than the period skips the ticks it overlaps. Modelled, not
//     measured, so a report stays byte-for-byte the same for a seed;
//   - retries spend the router's retry budget (router.RetryBudget, the
//     router's own code): a retry the budget refuses is not made.
//
// Use it beside the baselines:
//
//	reg := sim.Baselines()
//	reg[closedloop.Name] = closedloop.Constructor(closedloop.DefaultConfig())
//	rep, err := sim.Bench(ctx, sc, append(sim.BaselineNames(), closedloop.Name), sim.BenchOptions{Registry: reg})
//
// Every round's prediction for its own λ (the optimizer's frontier point)
// is kept (Policy.Predictions), so `loopgate bench --lambdas` can run the
// policy at fixed values of Config.Optimizer.Lambda and compare, over the
// steady phase (SteadyPhase: after the warmup and SteadyMargin away from
// every timeline event), what the optimizer predicted with what the
// simulator measured (CheckFrontier). Keeping them changes nothing the
// policy does.
//
// Each run opens its own embedded warehouse (own data directory under
// Config.TempDir, own database) and its Close, which the simulator calls on
// every path, closes it and removes the directory: chDB runs one engine per
// process, so runs follow one another. Virtual time t is the wall time
// Epoch() + t for outcomes, buckets and the optimizer's clock; retention
// TTLs are off so that 2026 timestamps are never dropped.
//
// libchdb is found as the warehouse finds it: Config.LibPath,
// LOOPGATE_CHDB_LIB, CHDB_LIB_PATH, then the copy that `make run` and
// `make test` cache (deploy/local/chdb.sh). Without it New fails with
// warehouse.ErrNoChdb and an error that names the fix.
//
// Config.Routers > 1 (`loopgate bench --routers N`) runs the product as N
// routers behind a round-robin balancer sharing one slow loop (Routers,
// routers.go): each router's fast loop is its own and counts only its own
// attempts in flight, and every router applies each policy at the same
// virtual instant.
package closedloop
