// Package router is the HTTP front of a Livepeer gateway: it authenticates
// a client request, chooses an orchestrator for it, proxies it with retries
// and emits one event.Outcome per request.
//
// # Wiring
//
// cmd builds one Router with the one constructor shape (package deps),
// serves its API, and mounts its read-only endpoints on the process's
// admin server (package admin):
//
//	rt, err := router.New(cfg, publisher, deps.Deps{Logger: logger, Registerer: reg, Rand: deps.SeededRand()})
//	if err != nil { ... }
//	defer rt.Close()
//	srv.Handle("GET /policy", admin.RoleRead, rt.AdminHandler())
//	srv.Handle("GET /orchestrators", admin.RoleRead, rt.AdminHandler())
//	g.Go(func() error { return rt.FollowPolicies(ctx, policyLog) }) // eventlog.PolicyLog: from the newest policy on
//	<-policyLog.CaughtUp()                                           // then serve: the first request sees the policy
//	...
//	ln, err := net.Listen("tcp", ":8935")
//	g.Go(func() error { return rt.Serve(ctx, ln) }) // until ctx ends; in-flight requests finish and publish their outcomes
//	...
//	err = rt.Reload(newCfg) // on SIGHUP: swaps orchestrators and keys, keeps fast-loop state
//
// Serve is the client-facing HTTP server, bounded by Config.Server
// (ServerConfig): headers must arrive within ReadHeaderTimeout (10 s) and
// fit MaxHeaderBytes (64 KiB), the whole request within ReadHeaderTimeout +
// BodyTimeout (60 s) of its first byte (the body only: the response may
// stream for as long as RequestTimeout allows), a
// keep-alive connection idle for IdleTimeout (60 s) is closed, and at most
// MaxConns (4096) connections are open. What net/http answers below the
// handler in plain text (431, 400, 501) or not at all (a header cut short)
// is answered in the one JSON error shape by Serve's connection wrapper;
// Handler alone (under httptest, say) has none of these bounds.
//
// publisher is anything with Publish(key, value []byte) error that does not
// block (eventlog's publisher). The router owns no goroutines: every request
// runs on its net/http goroutine and publishes its outcome before returning,
// so http.Server.Shutdown loses no outcome. (cmd should also call
// gin.SetMode(gin.ReleaseMode) once, gin's mode being gin's global.)
//
// # Requests
//
// POST /text-to-image, /image-to-image, /image-to-video, /upscale,
// /audio-to-text, /segment-anything-2, /image-to-text, /llm, /text-to-speech
// take the bodies of go-livepeer's AI gateway: JSON for text-to-image, llm
// and text-to-speech, multipart/form-data for the others. Each is also
// served under /v1 (VersionPrefix), the versioned surface; the unprefixed
// paths stay as go-livepeer serves them. With WithOpenAPI the API's
// document (package openapi) is at GET /openapi.json and /v1/openapi.json.
//
// The body is buffered (up to MaxBodyBytes, so it can be sent again on a
// retry; the bytes a key has buffered over all its requests are capped by
// BodyMemoryPerKey and the router's by BodyMemory, each buffer reserved
// before it is allocated and released when the request ends) and
// forwarded byte for byte to the same path on the chosen orchestrator's URL,
// with the client's headers minus Authorization, Cookie and hop-by-hop
// headers, plus X-Loopgate-Request-Id (the outcome id, also returned to the
// client). The response is streamed back; responses without a
// Content-Length (LLM server-sent events) are flushed as they arrive.
//
// The request's class is capability (from the path) + model: "model_id" in
// the JSON body or multipart form ("model_id" or "model" for llm, whose body
// is OpenAI-shaped), else the capability's DefaultModel (go-livepeer's
// defaults). An empty model_id counts as absent.
//
// Authentication: "Authorization: Bearer <key>". The configuration holds
// only SHA-256 hashes of keys; the presented key is hashed and compared with
// every configured hash with crypto/subtle, without early exit. Outcomes
// carry the key's id and customer, never the key. The client region comes
// from the key's configuration; if TrustClientRegionHeader is set, a valid
// X-Loopgate-Client-Region header (letters, digits, - and _, ≤ 32) overrides
// it.
//
// Errors are JSON in one shape (event.APIError), {"error": {"message":
// "...", "reason": "..."}}, with Content-Type application/json; reason is
// the loopgate_router_rejected_total label for refusals and the outcome's
// error class after attempts:
//
//	400  invalid_json, invalid_multipart, missing_field (prompt/image/audio/messages/text by
//	     capability), invalid_field (model over 256 bytes, a size that is not an integer in
//	     range), read_error; bad_request for what is not HTTP (below the handler)
//	401  missing_key: no API key or a malformed Authorization header
//	403  wrong_key: an unknown API key; key_revoked: a revoked key; key_scope: a key not
//	     scoped to the capability or model (APIKeyConfig.Capabilities, Models)
//	404  not_found: any other path; unknown_model: no configured orchestrator serves the model
//	405  method_not_allowed: a known path with another method, with Allow
//	408  header_timeout, body_timeout (Serve's bounds)
//	413  body_too_large: a body over MaxBodyBytes
//	415  unsupported_media_type: a JSON endpoint sent anything but application/json,
//	     application/*+json or no Content-Type; a multipart one anything but multipart/form-data
//	429  body_memory_per_key, with Retry-After
//	431  header_too_large (Serve's MaxHeaderBytes)
//	503  no_capacity (every server at its in-flight limit or ejected by the policy), connect
//	     or reset (every attempt refused), body_memory and too_many_connections (with Retry-After)
//	503  shed at the edge (see Workload shaping): admission, queue_full, queue_deadline, with Retry-After
//	502  the last attempt failed at the transport level (not refused, not a timeout)
//	504  deadline (the request deadline passed), timeout (the last attempt timed out)
//	4xx/5xx from the orchestrator are relayed as they came when no retry follows.
//	429, 402, 403 whatever the Gate refuses with (package gateway: rate,
//	     concurrency, units per minute, budgets, allowlists), with its
//	     Retry-After and JSON error naming the limit
//
// # Gate
//
// With WithGate, every request that passed the checks above is admitted
// by the Gate (package gateway) before any attempt, and the Gate settles
// it with its outcome (charge by price book, margin, spend). A refused
// request is answered as the Gate says and still produces an outcome
// (status rejected, error class the refusal's code, no attempts). A key's
// MaxPricePerUnit excludes the class's orchestrators that charge more.
// Failed authentication (an unknown key) is logged with the peer address,
// X-Forwarded-For and the first 8 hex digits of the key's SHA-256.//
// Bad input is answered and counted (loopgate_router_rejected_total{reason})
// and never forwarded.
//
// # Units, cost and charge
//
// Units follow go-livepeer's pricing:
//
//	text-to-image       pixels: height × width × num_images_per_prompt (absent: 512 × 512 × 1, as go-livepeer's gateway bills)
//	image-to-image      pixels: input image height × width × num_images_per_prompt
//	upscale, segment-anything-2, image-to-text
//	                    pixels: input image height × width
//	                    (PNG, JPEG and GIF headers are read; other or broken images count DefaultHeight × DefaultWidth, 512 × 512)
//	image-to-video      pixels: height × width × Frames (absent: 576 × 1024 × 25, go-livepeer's)
//	audio-to-text       ms of audio: from the request's WAV header; else from the response's last
//	                    chunk timestamp ({"chunks": [{"timestamp": [start, end]}]}); else DefaultAudioMs (60 s)
//	llm                 tokens: max_tokens (absent: DefaultMaxTokens, 256)
//	text-to-speech      characters: Unicode code points of "text" (go-livepeer's orchestrator counts
//	                    1000 units per character; loopgate prices per character)
//
// Billing: each attempt records Billed and Cost = orchestrator price per
// unit for the class × units. A 2xx is billed. A refused or reset
// connection, a 503 (busy: go-livepeer checks capacity before taking
// payment) and a 4xx are never billed. Any other failure — a 5xx, a timeout,
// a response that broke or that the client abandoned — is billed when it
// came at least FastFailure (250 ms) after the attempt started: sooner, the
// orchestrator cannot have started the job. The outcome's Cost is the sum
// over attempts; PricePerUnit is the last attempt's price; Charge =
// customer price per unit (CustomerPricePerUnit or ModelPrices) × units, for
// successful requests only (a Gate may reprice it by the customer's
// tier). Margin = Charge − Cost.
//
// # Selection
//
// Candidates for a request are the orchestrators serving its class
// (precomputed per class on every Reload and SetPolicy, so a decision reads
// only the class's members) that this request has not tried, that the
// policy does not eject and that are under their in-flight limit (the
// smaller of the configured and the policy limit). Choose draws one with
// probability weight/Σweights:
//
//	base   = (1−ε)·share + ε/n               ε = Exploration (0.05), n = candidates
//	lat    = f·(L_best/L)^β + (1−f)          L = peak-EWMA latency, f = its freshness S/(S+age), β = LatencyExponent (1)
//	load   = 1 / (1 + in_flight/scale)       scale = the in-flight limit, else InFlightScale (8)
//	pen    = FailurePenalty^consecutive_failures (0.5 per failure, counted up to EjectAfter)
//	weight = base · lat · load · pen
//
// share is the policy's share for (capability, model, client region), else
// (capability, model, any region), else (capability, any model, region),
// else (capability, any model, any region), else equal shares; an
// orchestrator the applicable entry does not name has share 0 and is reached
// only through ε. The peak-EWMA latency is the time to the response headers
// of successful attempts (and the attempt timeout for timeouts): a higher
// sample replaces the estimate at once, a lower one pulls it down with
// weight 1−e^(−Δt/LatencyTau). An estimate nobody refreshes fades to neutral
// (f → 0), so a once-slow orchestrator gets traffic again.
//
// EjectAfter (3) consecutive failures (5xx, 503, refused, timeout; a 4xx is
// the client's fault and does not count) eject an orchestrator locally for
// EjectBase (10 s), doubling with each further ejection up to EjectMax
// (30 s); a success resets both. The failure streak outlives the ejection,
// so the first request after it is a probe: one more failure ejects again.
// If every remaining candidate is locally ejected they are used anyway
// ("panic" routing) rather than answering 503 — but not while a healthy
// orchestrator is only at its in-flight limit: then the request waits at
// the edge for its slot (with an outage the healthy ones fill up, and
// panic routing sent every newcomer to the dead one). Policy ejections
// always hold.
//
// Each attempt records its propensity (the probability of the draw that
// chose it) and its Score (share, latency, in flight, penalty, weight), and
// the outcome records the policy version, so decisions can be replayed and
// new policies evaluated offline. Given the same random source and state the
// choice is the same: selection is deterministic.
//
// # Workload shaping
//
// Concurrency limits. Each orchestrator's in-flight limit is the smaller
// of its configured MaxInFlight and the policy's limit (the optimizer
// derives it from capacity and latency by Little's law; its reason is in
// the policy). That is a ceiling: under it the router adapts the limit in
// force with a Gradient2-style controller (LimitConfig: the limit shrinks
// when recent latency rises above the long-run baseline by more than
// Tolerance, or on a busy answer or a timeout, and grows back while the
// slots are used). The router never has more attempts in flight to an
// orchestrator than the limit in force, first attempts, retries and
// edge-queue hand-offs alike. An orchestrator without either limit is not
// limited.
//
// Admission. When the policy gives the entry governing a request's class
// and client region an admission rate (AdmitPerS, set by the optimizer
// under overload, lowest class values first), a token bucket of
// Shaping.AdmissionBurst worth of that rate admits the request or sheds it
// at once (Admission). A key whose tier (APIKeyConfig.Tier) has a
// Shaping.TierPriority above 1 is exempt: a paid tier is protected from a
// free one on the same model.
//
// Edge queue. A first attempt or a retry that finds every eligible
// orchestrator (not yet tried) at its limit waits at the edge (EdgeQueue, at most Shaping.QueueSize), so
// requests wait at the gateway rather than in orchestrators' queues. The
// rule:
//
//	priority = class value (the policy entry's Value, USD per SLO miss; 1 without) × tier priority
//	start_by = arrival + budget − L_best   budget = the entry's SLOMs, else RequestTimeout;
//	                                       L_best = the class's best peak-EWMA latency
//	order    = priority descending, then start_by ascending (earliest deadline first), then arrival
//
// A freed slot is handed straight to the first waiter, in that order, of
// a class the orchestrator serves (its propensity is logged as 1: it had
// one candidate), unless the orchestrator is ejected or over a limit that
// was lowered meanwhile. A newcomer queues behind waiters of its class. A
// request is shed — answered at once with 503, Retry-After and a JSON
// error saying why, never sent only to time out — when:
//
//	admission       its class is over its admission rate
//	queue_deadline  it cannot start in time: start_by has passed, or the expected
//	                wait, (waiters of its class ahead + 1) / drain rate, ends after it,
//	                where the drain rate is measured: the rate its class's waiters
//	                were handed slots while they waited, over the last
//	                Shaping.QueueDrainWindow (5 s) of waiting, and until there is
//	                enough of that Σ limit/latency over the class's members
//	                (Little's law); or it is still waiting at start_by
//	queue_full      the queue is full of requests that outrank it (a newcomer
//	                that outranks the last waiter evicts that one instead)
//
// A shed request's outcome has status "shed", error class the reason and
// HTTP 503, and usually no attempt.
//
// # Retries
//
// An attempt failing before any byte reached the client with a retryable
// result — refused or reset connection, 5xx, 503, or no response headers
// within AttemptTimeout (30 s; 2 min for image-to-video) — is retried on an
// orchestrator not yet tried, up to MaxAttempts (3) in all, within
// RequestTimeout (90 s; 5 min for image-to-video), and only while the retry
// budget allows: retries in the last Window (10 s), this one included, may
// not exceed Ratio (0.2) × requests in that window + MinPerSecond (1) ×
// Window seconds. A retry that finds every orchestrator left at its limit
// waits at the edge queue like a first attempt (spending the budget before
// it waits) rather than failing a request that still has time.
//
// Config.DerivedTimeout (TimeoutConfig, LatencyDist) shortens an attempt's
// timeout to what the orchestrator's own time to first byte for the class
// says (Margin 1.5 × its p99.9, at least 250 ms; the class's estimate for
// an orchestrator not yet seen in it; AttemptTimeout stays the ceiling),
// so a hung orchestrator is abandoned and the request retried long before
// the client's timeout. The proxy and the simulator's closed loop apply
// the same rule. A 4xx is never retried; nothing is retried once the
// response has started. Hedging (a second attempt racing a slow first) is
// not implemented.
//
// # Outcomes
//
// Every request that passed authentication and input checks produces one
// outcome, published with key = its id after the response is written —
// including requests rejected for want of an orchestrator (status
// "rejected", HTTP 503) and requests the client abandoned (status
// "canceled", HTTP 499 if nothing was sent). Requests refused for bad input
// (401, 403, 404 including unknown_model, 405, 408, 413, 415, 429, 400)
// produce no outcome: they name no class and
// would only let a bad client write to the log; they are counted in
// loopgate_router_rejected_total and loopgate_router_requests_total.
//
// Error classes (Outcome.ErrorClass, Attempt.ErrorClass): http_<code> (an
// orchestrator's 4xx or 5xx other than 503), busy (503), connect (connection
// refused), reset (connection reset or closed before a response), timeout
// (no response headers within AttemptTimeout), deadline (RequestTimeout
// passed), client_gone, broken_response (the response broke after its
// first byte), transport (any other transport error), no_orchestrator and
// no_capacity (rejected before any attempt), admission, queue_full and
// queue_deadline (shed).
//
// # Metrics
//
// Registered on the injected registerer:
//
//	loopgate_router_requests_total{capability,code}        requests by HTTP status returned
//	loopgate_router_attempts_total{capability,result}      attempts by result (ok, error, busy, refused, timeout, client, canceled)
//	loopgate_router_retries_total{capability}              attempts that were retries
//	loopgate_router_retry_budget_exhausted_total           retries refused by the budget
//	loopgate_router_rejected_total{reason}                 requests answered without an attempt: not_found, missing_key,
//	                                                       method_not_allowed, wrong_key, body_too_large, read_error,
//	                                                       body_timeout, body_memory_per_key, body_memory, invalid_json,
//	                                                       invalid_multipart, unsupported_media_type, missing_field,
//	                                                       invalid_field, unknown_model, no_orchestrator, no_capacity, internal,
//	                                                       key_scope, key_revoked, gate_error and the Gate's
//	                                                       codes (rate_limited, budget_exceeded, ...)
//	loopgate_router_request_duration_seconds{capability}   latency histogram
//	loopgate_router_in_flight_requests                     requests being served
//	loopgate_router_decision_duration_seconds              time to choose an orchestrator
//	loopgate_router_policy_version                         policy version in use
//	loopgate_router_policy_updates_total{result}           applied, stale, invalid
//	loopgate_router_config_reloads_total{result}           ok, invalid
//	loopgate_router_local_ejections_total                  local ejections
//	loopgate_router_outcomes_published_total               outcomes handed to the publisher
//	loopgate_router_outcome_publish_errors_total           outcomes not encoded or refused by the publisher
//	loopgate_router_shed_total{reason}                     requests shed at the edge: admission, queue_full, queue_deadline
//	loopgate_router_edge_queue_length                      requests waiting in the edge queue
//	loopgate_router_edge_queue_wait_seconds                time spent in the edge queue, served or shed
//	loopgate_router_open_connections                       client connections open (Serve)
//	loopgate_router_http_refused_total{reason}             answers Serve gave below the handler: header_timeout,
//	                                                       header_too_large, bad_request, too_many_connections, others
package router
