// Package sim is loopgate's benchmark: it runs routing policies against a
// simulated fleet of orchestrators in virtual time and reports how each did,
// as `loopgate bench` prints it. Scenarios (fleet, demand, timeline) are
// read by sim/scenario; the public ones ship in sim/scenarios; the oracle's
// fluid allocation is sim/oracle.
//
//	sc, _ := scenarios.Load("fault-storm")       // or scenario.Load(path)
//	reg := sim.Baselines()                       // random, round-robin, least-inflight, p2c-ewma, livepeer, oracle
//	reg["loopgate"] = newLoopgate                // the product plugs in here (a sim.Constructor)
//	rep, err := sim.Bench(sc, append(sim.BaselineNames(), "loopgate"), sim.BenchOptions{Registry: reg})
//	rep.WriteMarkdown(os.Stdout)                 // and json.Marshal(rep) is report.json
//
// One policy on one scenario, with every request and attempt:
//
//	res, err := sim.Run(sc, policy, sim.Options{})
//	row := sim.Summarize(sc, "mine", res)
//
// # The model
//
// A discrete-event simulation on one goroutine: a heap of events ordered by
// (virtual time, scheduling order); no wall clock, no goroutine per request.
// Clients send Poisson arrivals with their class mix, generated up front from
// the seed (rates, mixes and regions follow the timeline), so every policy
// sees the same requests. Each request asks the Policy for an orchestrator;
// the attempt travels rtt/2 to it, and:
//
//   - down: the connection is refused at once; the router learns it one round
//     trip after sending (a TCP connect to a closed port costs one rtt).
//     Not billed. Attempts it held when it went down are reset, the router
//     learning it rtt/2 after the change (billed if service had started).
//   - hang: it accepts and never answers; the attempt takes no server and no
//     queue place (so no 503 gives it away) and ends only by the client's
//     timeout, or the policy's per-attempt timeout. Attempts it held when it
//     started hanging are swallowed the same way. Not billed unless service
//     had started before the hang.
//   - otherwise a failure is drawn (probability fail). fail_mode fast: a 500
//     after one round trip, no server used, not billed. slow: the attempt is
//     served normally and answers 500 after its service time, billed.
//   - it takes a free server (capacity), else a place in the FIFO queue
//     (queue), else it is rejected at once with a 503 (one round trip, not
//     billed). Service time is lognormal with the offer's p50 and
//     σ = ln(p99/p50)/2.326 (or exponential with the same median when
//     Options.Service is Exponential, for theory checks).
//
// An attempt's latency is exactly rtt + queue wait + service time (integer
// nanoseconds; a test checks every attempt). It is billed price × units when
// it starts service, and stays billed if the router abandons it afterwards
// (a hedge that loses, a timeout). A request succeeds if a 200 reaches the
// router before the class's timeout_ms; it meets its SLO if that happens
// within slo_ms of its arrival.
//
// # Randomness
//
// Every draw is a hash of (seed, purpose, keys), not the next number of a
// shared stream: arrival gaps and classes by (client, n), failures and
// service times by (request, orchestrator, visit), where visit counts the
// request's earlier attempts at that orchestrator. So request 17's first
// visit to orchestrator 3 is equally lucky under every policy, and a run is
// a pure function of the scenario, the seed and the policy. Each policy gets
// its own *rand.Rand from the seed and its name (NewEnv).
//
// # Policies
//
// A Policy returns Limits for each request (attempts, per-attempt timeout,
// hedge delay), Picks the orchestrator of each attempt from the Fleet (what
// discovery advertises: ids, regions, stake, classes and prices, plus the
// router's in-flight counts; Pick may also give up, shedding the request,
// or ask to wait at the edge), and Observes every attempt's end. Hedging:
// after HedgeAfter without an answer a second attempt starts; the first 200
// wins, the other is cancelled. Only the oracle implements ChangeObserver
// and sees the true state at each timeline change (a wrapper such as
// closedloop.Gated passes it on, adding nothing). A RequestObserver is told
// when each request ends, with its record: the bench's gateway settles
// admissions there. Registry maps names to
// Constructors; the caller owns it (no package-level registry).
//
// # Reports
//
// Summarize computes the fields of report.json as the scenario README
// defines them, over requests that arrive after the warmup. recovery_s:
// see recovery in report.go (requests are placed by arrival; a dip that
// never recovers reports the time to the end of the run, a lower bound).
// A policy is judged first by Report.VsBestClassic, its loss ÷ that of
// the best classic balancer (ClassicNames) on the same scenario, the
// "vs best classic" column; WriteSummary writes the closing line over
// several scenarios (worst and mean of that ratio per policy).
// Report.GapClosed compares each policy with livepeer and the oracle.
//
// Files: engine.go (events and the orchestrator model), fleet.go (the
// policy's view), arrivals.go, rng.go, policy.go (the seam), baselines.go,
// p2c.go, livepeer.go, oraclepolicy.go, report.go, bench.go.
package sim
