// Package fleet serves a scenario's orchestrators as real HTTP servers on
// 127.0.0.1, in wall-clock time, for demos (`loopgate fleet`, `loopgate
// dev`) and end-to-end tests: the router proxies to them exactly as it would
// to go-livepeer orchestrators or AI runners. The virtual-time simulator
// (package sim) is the benchmark; this is its live twin, driven by the same
// scenario file (sim/scenario) and the same rules.
//
//	sc, err := scenario.Load("fault-storm.yaml")  // or scenarios.Load("fault-storm")
//	cfg := fleet.DefaultConfig()
//	cfg.Speed = 10                                // a 600 s scenario in 60 s
//	f, err := fleet.New(sc, cfg, deps.Deps{Logger: logger, Registerer: reg})
//	if err := f.Start(ctx); err != nil { ... }    // binds every port, starts the timeline
//	for _, o := range f.Orchestrators() {
//		cfg.Orchestrators = append(cfg.Orchestrators, o.Orchestrator) // an event.Orchestrator: id, URL, prices
//	}
//	g.Go(func() error { return f.Run(ctx) })      // serves until ctx is cancelled
//	...
//	err = f.Set(ctx, "fra-1", scenario.Patch{Down: ptr(true)}) // by hand, like a timeline entry
//
// # One orchestrator
//
// Each orchestrator listens on its own port (Config.Ports, BasePort+i, or a
// free one) and serves POST on the Livepeer AI paths (/text-to-image,
// /image-to-image, /image-to-video, /upscale, /audio-to-text,
// /segment-anything-2, /image-to-text, /llm, /text-to-speech, and any other
// capability a scenario class names). The class of a request is the
// capability of its path plus its model: "model_id" in a JSON body or a
// multipart form ("model" too, as /llm's OpenAI-shaped body has it),
// matched against the scenario's classes. A request without a model is
// accepted only when the scenario has a single model for that path. When
// several scenario classes share a capability and a model, the
// X-Loopgate-Sim-Class header (sent by sim/load, forwarded by the router)
// chooses; without it the first class the orchestrator serves is taken.
//
// Answers, as the scenario format says:
//
//	404  unknown path; 405 not POST; 413 body over MaxBodyBytes
//	400  malformed body, unknown model, or a class this orchestrator does not serve
//	     (now: a timeline entry may have removed it)
//	500  failure, drawn with probability fail: fast = at once, slow = after the
//	     service time (the request held a server meanwhile)
//	503  capacity servers busy and queue places taken: at once
//	200  after the FIFO queue wait and a lognormal service time with the class's
//	     p50 and σ = ln(p99/p50)/2.326; a small go-livepeer-shaped JSON body
//	     (text-to-image {"images":[{"url":"data:image/png;base64,...","seed":N,"nsfw":false}]},
//	     llm an OpenAI chat completion, or one server-sent event when "stream": true, ...)
//
// Errors are {"error": {"message": "..."}}, as go-livepeer writes them.
//
//   - down: the listener is closed, so a connection is refused at once, and
//     every open connection is closed (requests it held see a reset: the
//     simulator's "attempts it held are reset"). down: false rebinds the
//     same port (retried for ReopenTimeout if the port is briefly taken).
//   - hang: connections are accepted and requests read, never answered;
//     held requests take no server and no queue place. Requests it held
//     when the hang began join them. A held request ends when its client
//     gives up, when the hang ends or when the fleet stops: the connection
//     is then closed without an answer (never a status), so no goroutine
//     outlives Run.
//
// Every duration of the scenario is divided by Config.Speed: service times,
// rtt, and timeline times (entry at t runs at Origin()+t/Speed). The load
// generator (sim/load) takes the same Speed and multiplies rates by it, so
// utilisation, queueing and the shape of every curve match the scenario;
// only the clock runs faster. Latencies measured in wall time are scenario
// latencies divided by Speed.
//
// No network delay is added by default: loopback is the only round trip.
// With Config.RTTFrom set to a region (the router's), every answer,
// errors included, waits rtt(RTTFrom, orchestrator region)/Speed before it is
// written, so the router sees rtt + queue + service as the simulator does
// (a refused connection stays instant).
//
// The timeline's orchestrator entries are applied at their times from
// Start (entries at 0s before anything listens); client entries are the
// load generator's. Set applies a patch now with the same semantics, for
// tests and operators; State returns an orchestrator's current
// configuration.
//
// Randomness: each orchestrator draws its failures and service times from
// its own PCG stream seeded by (Config.Seed or the scenario's seed, its
// id). Runs are not reproducible request by request (arrival order at the
// servers is up to the network), only in distribution.
//
// # Metrics
//
//	loopgate_fleet_requests_total{orchestrator,outcome}      served, rejected, failed, bad_request, reset, hung, abandoned
//	loopgate_fleet_requests_in_progress{orchestrator,state}  queued, serving, hung
//	loopgate_fleet_up{orchestrator}                          1 accepting connections, 0 down
package fleet
