// Package load plays a scenario's client demand against a live HTTP target
// (the router, or an orchestrator of sim/fleet) in wall-clock time, for
// `loopgate load`, `loopgate dev` and end-to-end tests.
//
//	sc, err := scenario.Load("flash-crowd.yaml")
//	cfg := load.DefaultConfig()
//	cfg.Target = "http://127.0.0.1:8935"           // the router
//	cfg.APIKeys = map[string]string{"acme": "sk-acme", "globex": "sk-globex"}
//	cfg.Speed = 10                                  // same as the fleet's
//	cfg.Origin = f.Origin()                         // share the fleet's timeline clock
//	g, err := load.New(sc, cfg, deps.Deps{Logger: logger, Registerer: reg, Rand: rand.New(rand.NewPCG(seed, 0))})
//	sum, err := g.Run(ctx)                          // blocks for Duration/Speed, then drains
//	sum.WriteText(os.Stdout)                        // or json.Marshal(sum)
//	// sum.Answered() ≤ requests the router recorded ≤ sum.Total.Sent
//
// # What is sent
//
// Each client of the scenario sends Poisson arrivals at its rate (per
// scenario second; × Speed per wall second), each of a class drawn from
// its mix; the timeline's client entries change rate, mix and region at
// Origin + At/Speed. Arrivals are drawn from the injected rng by one
// scheduling goroutine; each request runs on its own goroutine, at most
// MaxInFlight at once (an arrival beyond that is dropped and counted, so the
// load stays open-loop and cannot pile up unboundedly).
//
// A request is POST Target + "/" + capability with the body go-livepeer's
// gateway takes for it (the router checks these; see router's package doc):
//
//	text-to-image       JSON {model_id, prompt, height, width, num_images_per_prompt: 1}
//	llm                 JSON {model_id, model, messages, max_tokens, stream: false}
//	text-to-speech      JSON {model_id, text, description}
//	image-to-image, upscale, segment-anything-2, image-to-text
//	                    multipart {model_id, prompt, image: a black PNG}
//	image-to-video      multipart {model_id, height, width, image}
//	audio-to-text       multipart {model_id, audio: silent WAV, 8-bit mono 1 kHz}
//
// sized so the router counts exactly the class's units: pixels as height ×
// width (image-to-video: × 25 frames, the router's default), max_tokens,
// characters of text, milliseconds of audio. A pixel count with no
// factorisation into sides ≤ 65536 is approximated by a square. Bodies are
// built once per class in New.
//
// Headers: Content-Type; "Authorization: Bearer <key>" from APIKeys (none
// for a client without a key); X-Loopgate-Client-Region with the client's
// current region (the router honours it when trust_client_region_header is
// set; otherwise the key's configured region applies); X-Loopgate-Sim-Class
// with the class id, which only sim/fleet reads (to tell apart scenario
// classes that share a capability and a model).
//
// Each request has the class's timeout_ms / Speed as its client timeout,
// measured to the end of the answer's body.
//
// # Ending
//
// Run returns after Duration of scenario time (default the scenario's),
// or when ctx is cancelled; either way it then waits for requests in
// flight up to DrainTimeout (default: longest timeout / Speed + 1s) and
// cancels what is left. Every goroutine it started has ended when it
// returns. A cancel is not an error: Summary.Interrupted says so.
//
// # Summary
//
// Counts, in total and by class and client: Sent = Answered +
// TransportErrors; Answered = Succeeded (2xx) + Failed; TimedOut and
// Cancelled are transport errors; Dropped were never sent. ByStatus
// counts answers by HTTP status; LatencyMs gives wall-clock percentiles of
// successful requests (× Speed for scenario milliseconds). Answered() is
// the number to compare with the router's recorded requests: every answer
// came from the router, and a request that timed out on the client has
// usually reached it too, so the router records between Answered() and
// Total.Sent requests (exactly Answered() when TransportErrors is 0).
//
// # Metrics
//
//	loopgate_load_requests_total{client,class,result}   2xx, 4xx, 5xx, other, timeout, error, cancelled, dropped
//	loopgate_load_request_duration_seconds{class}       answered requests, wall clock
//	loopgate_load_requests_in_flight
package load
