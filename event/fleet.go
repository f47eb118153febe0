package event

// The fleet vocabulary: what every component calls a capability, the unit
// a capability is billed in, and an orchestrator with its class prices. It
// is defined here once; the router's configuration, the optimizer's
// catalog, the simulated fleet and the benchmark all use these types (by
// alias or embedding), so an operator lists each orchestrator once and no
// component converts one shape into another.

// Capability names: the Livepeer AI gateway paths without the leading slash.
const (
	CapTextToImage      = "text-to-image"
	CapImageToImage     = "image-to-image"
	CapImageToVideo     = "image-to-video"
	CapUpscale          = "upscale"
	CapAudioToText      = "audio-to-text"
	CapSegmentAnything2 = "segment-anything-2"
	CapImageToText      = "image-to-text"
	CapLLM              = "llm"
	CapTextToSpeech     = "text-to-speech"
)

// Capabilities lists every capability, in the Livepeer AI gateway's route
// order.
func Capabilities() []string {
	return []string{
		CapTextToImage, CapImageToImage, CapImageToVideo, CapUpscale, CapAudioToText,
		CapSegmentAnything2, CapImageToText, CapLLM, CapTextToSpeech,
	}
}

// KnownCapability reports whether name is one of Capabilities.
func KnownCapability(name string) bool {
	_, ok := UnitKindOf(name)
	return ok
}

// UnitKindOf is the unit a capability is billed in, as go-livepeer prices
// it: pixels for images and video, max_tokens for llm, milliseconds of
// audio for audio-to-text, characters for text-to-speech. ok is false for
// an unknown capability.
func UnitKindOf(capability string) (kind UnitKind, ok bool) {
	switch capability {
	case CapTextToImage, CapImageToImage, CapImageToVideo, CapUpscale, CapSegmentAnything2, CapImageToText:
		return UnitPixels, true
	case CapLLM:
		return UnitTokens, true
	case CapAudioToText:
		return UnitMillis, true
	case CapTextToSpeech:
		return UnitCharacters, true
	}
	return "", false
}

// Orchestrator is one upstream as the gateway knows it: where to reach it,
// where it is, who it is on chain, how much it takes at once and what it
// charges per class. It is the `orchestrators:` entry of the configuration,
// what discovery reports, and what the router and the optimizer both read.
type Orchestrator struct {
	// ID is the stable name used in policies and outcomes. Required, unique.
	ID string `yaml:"id" json:"id"`
	// URL is the base URL; a request to /llm goes to URL + "/llm", and the
	// go-livepeer advisor webhook lists it. Required by the router.
	URL string `yaml:"url" json:"url"`
	// Region is the orchestrator's Livepeer leaderboard region code (FRA,
	// LAX, ...). Optional.
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
	// Address is the on-chain address (0x + 40 hex digits) that keys the
	// advisor's perf-stats. Optional.
	Address string `yaml:"address,omitempty" json:"address,omitempty"`
	// Stake is the orchestrator's bonded stake, as go-livepeer's selection
	// weighs it. Optional; loopgate's own routing does not use it.
	Stake float64 `yaml:"stake,omitempty" json:"stake,omitempty"`
	// MaxInFlight is how many attempts it takes at once, as configured or
	// advertised. 0 = unknown: the router sets no cap of its own (a policy
	// limit may still apply) and the optimizer assumes its
	// capacity.default_max_in_flight.
	MaxInFlight int `yaml:"max_in_flight,omitempty" json:"max_in_flight,omitempty"`
	// Classes it serves, with its price. The first entry for a
	// (capability, model) wins.
	Classes []ClassPrice `yaml:"classes" json:"classes"`
}

// ClassPrice is a demand class an orchestrator serves and what it charges.
type ClassPrice struct {
	Capability string `yaml:"capability" json:"capability"`
	Model      string `yaml:"model" json:"model"`
	// PricePerUnit is what the orchestrator is paid per unit, USD. 0 =
	// unknown (the optimizer then uses the observed cost).
	PricePerUnit float64 `yaml:"price_per_unit" json:"price_per_unit"`
}

// ShedStats counts one window's requests of a class (capability, model)
// from a client region that the routers refused at the edge before any
// attempt (status shed: over the admission rate, the edge queue full, or
// unable to start in time). They are demand the attempt statistics do not
// show: what was offered is the attempts plus these.
type ShedStats struct {
	Capability   string
	Model        string
	ClientRegion string
	Reason       string // the outcomes' error class: ShedAdmission, ShedQueueFull, ShedDeadline
	Requests     int64
	// Seconds is the span of the whole read, as AttemptStats.Seconds.
	Seconds float64
}

// AttemptStats are the statistics of one window of attempts on an
// orchestrator for a class (capability, model) and a client region: what
// the warehouse's rollups compute and the optimizer estimates from.
type AttemptStats struct {
	Orchestrator string
	Capability   string
	Model        string
	ClientRegion string

	Attempts     int64 // every attempt, whatever its result
	Successes    int64 // result ok
	Errors       int64 // result error (5xx, broken response)
	Timeouts     int64 // result timeout
	Refused      int64 // result refused (connection refused or reset)
	Busy         int64 // result busy (503: full, nothing started)
	ClientErrors int64 // result client (4xx): the request's fault, not judged
	Canceled     int64 // result canceled (hedge lost, client left): not judged

	// LatencyP50Ms .. LatencyP99Ms are quantiles of the latency of
	// successful attempts in ms; 0 = unknown (none succeeded). P50 is
	// needed for any latency estimate; the others give the spread.
	LatencyP50Ms float64
	LatencyP90Ms float64
	LatencyP95Ms float64
	LatencyP99Ms float64

	BilledAttempts int64   // attempts that were paid for
	BilledCost     float64 // USD paid for them

	// Seconds is the span of the whole read, the same on every row of it;
	// 0 = the requested window. Demand is Attempts / Seconds.
	Seconds float64
}
