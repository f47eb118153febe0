package event

// This file holds the rows that stock go-livepeer's own gateway events
// (-kafkaGatewayTopic) become once ingest has decoded them, shared by the
// ingest adapter that produces them and the warehouse that stores them.
//
// Every amount in wei is a decimal string, exact: face values, expected
// values and prices never pass through a float. The adapter guarantees the
// forms documented on each field (digits, an optional point and at most the
// stated number of fractional digits, below MaxWeiDigits integer digits),
// so both warehouse profiles store them without rounding.

// MaxWeiDigits bounds the integer digits of every wei amount the adapter
// accepts: 28, i.e. below 10^28 wei (10^10 ETH, about a hundred times the
// whole supply). It is what the legacy warehouse profile's Decimal(38, 10)
// holds exactly; the modern profile's Decimal(76, s) has room for more, but
// both refuse the same events so the two backends always agree.
const MaxWeiDigits = 28

// LivepeerBatch is what one batch of go-livepeer events becomes: rows for
// each warehouse table, in arrival order. Every row carries the id of the
// event it came from and its index within that event; (EventID, Index) is
// the row's identity, so a batch written twice adds no rows.
type LivepeerBatch struct {
	Payments      []LivepeerPayment
	Discovery     []LivepeerDiscovery
	Orchestrators []LivepeerOrchestrator
	Streams       []LivepeerStream
}

// Len is the number of rows in b.
func (b *LivepeerBatch) Len() int {
	return len(b.Payments) + len(b.Discovery) + len(b.Orchestrators) + len(b.Streams)
}

// Reset empties b, keeping its memory.
func (b *LivepeerBatch) Reset() {
	b.Payments, b.Discovery, b.Orchestrators, b.Streams = b.Payments[:0], b.Discovery[:0], b.Orchestrators[:0], b.Streams[:0]
}

// LivepeerEnvelope is what every go-livepeer gateway event carries.
type LivepeerEnvelope struct {
	// EventID is the event's id (a UUID from go-livepeer), or, for an event
	// without one, "kafka:TOPIC/PARTITION/OFFSET", which is as stable.
	EventID string
	// Gateway is the publishing gateway's address (go-livepeer's "gateway").
	Gateway string
	// TimeMs is the event's timestamp, Unix milliseconds.
	TimeMs int64
}

// LivepeerPayment is one create_new_payment event: a batch of probabilistic
// micropayment tickets a gateway sent to an orchestrator.
type LivepeerPayment struct {
	LivepeerEnvelope
	RequestID  string
	SessionID  string
	ManifestID string
	Capability string
	// Orchestrator is the orchestrator's service URI as go-livepeer names
	// it ("orchestrator": the transcoder URL).
	Orchestrator string
	// Recipient is the tickets' recipient, the orchestrator's ETH address,
	// lower case.
	Recipient string
	// Sender is the paying gateway's ETH address, lower case.
	Sender     string
	NumTickets uint32
	// FaceValueWei is each ticket's face value in wei: an integer.
	FaceValueWei string
	// WinProb is each ticket's winning probability as go-livepeer prints
	// it: a decimal in [0, 1] with at most 10 fractional digits.
	WinProb string
	// EVWei is the expected value paid, NumTickets × FaceValueWei × WinProb,
	// computed exactly: a decimal with at most 10 fractional digits.
	EVWei string
	// PricePerUnitWei is the price the session was priced at, in wei per
	// PriceUnit: a decimal with at most 3 fractional digits.
	PricePerUnitWei string
	// PriceUnit is the unit of the price, e.g. "pixel".
	PriceUnit string
}

// LivepeerDiscovery is one orchestrator of a discovery_results event: how
// long its GetOrchestratorInfo took when the gateway last refreshed.
type LivepeerDiscovery struct {
	LivepeerEnvelope
	Index     uint16 // position in the event's list (sorted by latency)
	Address   string // ETH address, lower case
	URL       string
	LatencyMs uint32
}

// LivepeerOrchestrator is one orchestrator of a network_capabilities event:
// what it offered at that time. Each event is a full snapshot, so the rows
// are versions: the newest row per address is its current offer.
type LivepeerOrchestrator struct {
	LivepeerEnvelope
	Index        uint32 // position in the event's list
	Address      string // ETH address, lower case
	LocalAddress string
	OrchURI      string
	// PricePerUnitWei and PixelsPerUnit are the general price (price_info):
	// PricePerUnitWei wei per PixelsPerUnit pixels, an integer.
	PricePerUnitWei string
	PixelsPerUnit   int64
	// CapabilitiesPrices is the per-capability price list as a JSON array
	// of {"pricePerUnit", "pixelsPerUnit", "capability", "constraint"}.
	CapabilitiesPrices string
	// Capabilities and Hardware are the event's JSON, kept as sent.
	Capabilities string
	Hardware     string
}

// LivepeerStream is one live-stream event: a stream_trace, ai_stream_status
// or ai_stream_events.
type LivepeerStream struct {
	LivepeerEnvelope
	// Kind is the envelope type: "stream_trace", "ai_stream_status" or
	// "ai_stream_events".
	Kind string
	// Type is the data's own type, e.g. gateway_receive_stream_request,
	// gateway_receive_first_processed_segment, orchestrator_swap,
	// gateway_no_orchestrators_available; "status" for ai_stream_status.
	Type       string
	StreamID   string
	RequestID  string
	Pipeline   string
	PipelineID string
	// OrchAddress and OrchURL are the orchestrator_info, when the event
	// names one.
	OrchAddress string
	OrchURL     string
	// DataTimeMs is the data's own timestamp (ms), or the envelope's.
	DataTimeMs int64
	// Message is the swap reason or error message, if any.
	Message string
	// Data is the event's data as sent (JSON).
	Data string
}

// OrchestratorPrior is what go-livepeer's own events say about one
// orchestrator over a window: the optimizer's starting point for an
// orchestrator with no loopgate outcomes.
type OrchestratorPrior struct {
	// Address is the ETH address, lower case; URL the last one seen.
	Address string
	URL     string
	// DiscoveryP50Ms is the median discovery latency (GetOrchestratorInfo
	// round trip) over DiscoverySamples samples; 0 samples = unknown.
	DiscoveryP50Ms   float64
	DiscoverySamples int64
	// Prices are the prices paid to it, per capability.
	Prices []PriorPrice
}

// PriorPrice is the mean price paid per unit for one capability.
type PriorPrice struct {
	Capability      string
	PricePerUnitWei float64 // mean over the payments: a prior, not an amount
	PriceUnit       string
	Payments        int64
}
