// Package scenario reads and checks loopgate benchmark scenarios: a fleet of
// orchestrators, the demand on it and a timeline of what goes wrong. The
// format is the contract in shared/scenarios/README.md (copied beside the
// public scenarios in sim/scenarios); this package implements it exactly and
// nothing else: it knows no policy and runs nothing.
//
//	sc, err := scenario.Parse(yamlBytes) // decode strictly, then Validate
//	var fe *scenario.FieldError
//	if errors.As(err, &fe) { ... fe.Path ("clients[1].mix"), fe.Reason ... }
//
//	st := sc.Initial()                   // a deep copy of clients and orchestrators
//	for _, ch := range sc.Timeline {     // sorted by At, stable
//		_ = st.Apply(ch)                 // the state from ch.At on
//	}
//
// Conventions:
//   - Durations ("duration", "warmup", "at") are Go duration strings such as
//     "600s", "1.5m" or "250ms"; a bare number means seconds. Fields ending in
//     _ms are numbers of milliseconds. Inside the package every duration is a
//     time.Duration.
//   - rtt_ms is symmetric: "FRA-LAX" also gives LAX-FRA (writing both is an
//     error); same_region is the round trip inside one region. A pair must be
//     given for every client region × orchestrator region that can occur.
//   - fail_mode defaults to fast, fail to 0, queue to 0, stake to 0.
//   - Unknown fields are errors (a typo such as "fail_mod" would otherwise
//     silently change a benchmark).
//
// Timeline semantics. Each entry names exactly one orchestrator or client and
// a `set` of its fields (any field but id). A set field replaces the current
// value, with one exception: an orchestrator's classes are merged per class,
// and inside a class per field, so {classes: {t2i: {price: 6e-9}}} changes
// one price and leaves the other classes and the latencies alone; a class set
// to null stops being served. A client's mix is replaced as a whole (it must
// still sum to 1). Entries are applied in order of `at` (stable for equal
// times), and the state after every entry is validated, so an error names the
// entry: "timeline[3].set.classes.t2i-sdxl: p99_ms 100 < p50_ms 200".
package scenario
