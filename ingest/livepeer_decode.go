package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/loopgate/loopgate/event"
)

// go-livepeer event types the adapter stores.
const (
	TypePayment             = "create_new_payment"
	TypeDiscovery           = "discovery_results"
	TypeNetworkCapabilities = "network_capabilities"
	TypeStreamTrace         = "stream_trace"
	TypeAIStreamStatus      = "ai_stream_status"
	TypeAIStreamEvents      = "ai_stream_events"
)

// livepeerTypes are the stored types, the label values of the adapter's
// per-type metrics (every other type is counted as "unknown").
var livepeerTypes = []string{TypePayment, TypeDiscovery, TypeNetworkCapabilities, TypeStreamTrace, TypeAIStreamStatus, TypeAIStreamEvents}

// ErrUnknownType is returned for a well-formed event of a type the adapter
// does not store (go-livepeer adds types over time): it is counted and
// skipped, not dead-lettered.
var ErrUnknownType = errors.New("unknown go-livepeer event type")

// LivepeerError is an event that cannot be stored; Reason is the
// dead-letter reason: "malformed" (not a JSON envelope), "too_large" or
// "invalid" (a field missing or out of range).
type LivepeerError struct {
	Reason string
	Err    error
}

func (e *LivepeerError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *LivepeerError) Unwrap() error { return e.Err }

func invalid(format string, args ...any) error {
	return &LivepeerError{Reason: "invalid", Err: fmt.Errorf(format, args...)}
}

// envelope is go-livepeer's monitor.GatewayEvent.
type envelope struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Timestamp json.RawMessage `json:"timestamp"`
	Gateway   string          `json:"gateway"`
	Data      json.RawMessage `json:"data"`
}

// DecodeLivepeer decodes one go-livepeer gateway event and appends its rows
// to b. fallbackID names the event when it carries no id (the adapter
// passes its Kafka position). It returns the event's type; the error is
// ErrUnknownType for a type not stored, else a *LivepeerError, and b is
// unchanged on any error. maxBytes bounds the event (0: no bound).
func DecodeLivepeer(value []byte, fallbackID string, maxBytes int, b *event.LivepeerBatch) (string, error) {
	if maxBytes > 0 && len(value) > maxBytes {
		return "", &LivepeerError{Reason: "too_large", Err: fmt.Errorf("%d bytes, limit %d", len(value), maxBytes)}
	}
	var env envelope
	if err := json.Unmarshal(value, &env); err != nil {
		return "", &LivepeerError{Reason: "malformed", Err: err}
	}
	if env.Type == "" {
		return "", invalid("no type")
	}
	known := false
	for _, t := range livepeerTypes {
		known = known || t == env.Type
	}
	if !known {
		return env.Type, fmt.Errorf("%w %q", ErrUnknownType, env.Type)
	}
	ts, err := parseMs(env.Timestamp)
	if err != nil || ts <= 0 {
		return env.Type, invalid("timestamp %s: want Unix milliseconds", env.Timestamp)
	}
	id := env.ID
	if id == "" {
		id = fallbackID
	}
	if id == "" {
		return env.Type, invalid("no id")
	}
	base := event.LivepeerEnvelope{EventID: id, Gateway: strings.ToLower(env.Gateway), TimeMs: ts}
	if len(bytes.TrimSpace(env.Data)) == 0 || string(bytes.TrimSpace(env.Data)) == "null" {
		return env.Type, invalid("%s without data", env.Type)
	}
	switch env.Type {
	case TypePayment:
		p, err := decodePayment(base, env.Data)
		if err != nil {
			return env.Type, err
		}
		b.Payments = append(b.Payments, p)
	case TypeDiscovery:
		rows, err := decodeDiscovery(base, env.Data)
		if err != nil {
			return env.Type, err
		}
		b.Discovery = append(b.Discovery, rows...)
	case TypeNetworkCapabilities:
		rows, err := decodeCapabilities(base, env.Data)
		if err != nil {
			return env.Type, err
		}
		b.Orchestrators = append(b.Orchestrators, rows...)
	default:
		s, err := decodeStream(base, env.Type, env.Data)
		if err != nil {
			return env.Type, err
		}
		b.Streams = append(b.Streams, s)
	}
	return env.Type, nil
}

// parseMs reads milliseconds sent as a string (go-livepeer's envelope) or
// a number (the data's own timestamps).
func parseMs(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, errors.New("missing")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		raw = []byte(s)
	}
	if v, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return v, nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != f || f > 1<<62 || f < -(1<<62) {
		return 0, fmt.Errorf("parse %q as milliseconds", raw)
	}
	return int64(f), nil
}

// payment is create_new_payment's data (all strings in go-livepeer).
type payment struct {
	RequestID    string `json:"requestID"`
	SessionID    string `json:"sessionID"`
	ManifestID   string `json:"manifestID"`
	Capability   string `json:"capability"`
	Recipient    string `json:"recipient"`
	FaceValue    string `json:"faceValue"`
	WinProb      string `json:"winProb"`
	Price        string `json:"price"`
	NumTickets   string `json:"numTickets"`
	Sender       string `json:"sender"`
	Orchestrator string `json:"orchestrator"`
	// clientIP is deliberately not read: it is the end user's address,
	// which loopgate does not keep.
}

func decodePayment(base event.LivepeerEnvelope, data json.RawMessage) (event.LivepeerPayment, error) {
	var p payment
	if err := json.Unmarshal(data, &p); err != nil {
		return event.LivepeerPayment{}, invalid("create_new_payment data: %v", err)
	}
	face, err := parseFaceValue(p.FaceValue)
	if err != nil {
		return event.LivepeerPayment{}, invalid("faceValue %q: %v", p.FaceValue, err)
	}
	wp, err := parseDecimal(p.WinProb, 10)
	if err != nil || wp.Cmp(big.NewRat(1, 1)) > 0 {
		return event.LivepeerPayment{}, invalid("winProb %q: want a decimal in [0, 1] with at most 10 fractional digits", p.WinProb)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(p.NumTickets), 10, 32)
	if err != nil {
		return event.LivepeerPayment{}, invalid("numTickets %q: want a count", p.NumTickets)
	}
	price, unit, err := parsePrice(p.Price)
	if err != nil {
		return event.LivepeerPayment{}, invalid("price %q: %v", p.Price, err)
	}
	ev := new(big.Rat).Mul(new(big.Rat).SetInt(face), wp)
	ev.Mul(ev, new(big.Rat).SetUint64(n))
	evs := ratString(ev, 10)
	if intDigits(evs) > event.MaxWeiDigits {
		return event.LivepeerPayment{}, invalid("expected value %s wei: over %d digits", evs, event.MaxWeiDigits)
	}
	return event.LivepeerPayment{
		LivepeerEnvelope: base,
		RequestID:        p.RequestID, SessionID: p.SessionID, ManifestID: p.ManifestID, Capability: p.Capability,
		Orchestrator: p.Orchestrator, Recipient: strings.ToLower(p.Recipient), Sender: strings.ToLower(p.Sender),
		NumTickets: uint32(n), FaceValueWei: face.String(), WinProb: ratString(wp, 10), EVWei: evs,
		PricePerUnitWei: ratString(price, 3), PriceUnit: unit,
	}, nil
}

var decimalRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// parseDecimal reads a non-negative decimal with at most maxFrac
// significant fractional digits and at most event.MaxWeiDigits integer
// digits, exactly.
func parseDecimal(s string, maxFrac int) (*big.Rat, error) {
	s = strings.TrimSpace(s)
	if !decimalRE.MatchString(s) {
		return nil, errors.New("not a decimal")
	}
	ip, fp, _ := strings.Cut(s, ".")
	if len(strings.TrimLeft(ip, "0")) > event.MaxWeiDigits {
		return nil, fmt.Errorf("over %d integer digits", event.MaxWeiDigits)
	}
	if len(strings.TrimRight(fp, "0")) > maxFrac {
		return nil, fmt.Errorf("over %d fractional digits", maxFrac)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, errors.New("not a decimal")
	}
	return r, nil
}

var weiPerETH = new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil))

// parseFaceValue reads go-livepeer's eth.FormatUnits: "N WEI" below
// 10^16 wei, else "X ETH" with up to 18 decimals; the result is exact wei.
func parseFaceValue(s string) (*big.Int, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return nil, errors.New(`want "N WEI" or "X ETH"`)
	}
	var frac int
	switch strings.ToUpper(strings.TrimSpace(unit)) {
	case "WEI":
		frac = 0
	case "ETH":
		frac = 18
	default:
		return nil, fmt.Errorf("unit %q: want WEI or ETH", unit)
	}
	r, err := parseDecimal(num, frac)
	if err != nil {
		return nil, err
	}
	if frac == 18 {
		r.Mul(r, weiPerETH)
	}
	if !r.IsInt() {
		return nil, errors.New("not a whole number of wei")
	}
	v := r.Num()
	if len(v.String()) > event.MaxWeiDigits {
		return nil, fmt.Errorf("over %d digits of wei", event.MaxWeiDigits)
	}
	return v, nil
}

// parsePrice reads "P wei/UNIT" (go-livepeer prints P with 3 decimals).
func parsePrice(s string) (*big.Rat, string, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return nil, "", errors.New(`want "P wei/UNIT"`)
	}
	per, u, ok := strings.Cut(strings.TrimSpace(unit), "/")
	if !ok || !strings.EqualFold(per, "wei") || u == "" {
		return nil, "", fmt.Errorf("unit %q: want wei/UNIT", unit)
	}
	r, err := parseDecimal(num, 3)
	if err != nil {
		return nil, "", err
	}
	return r, u, nil
}

// ratString prints r (whose denominator divides 10^frac) as a decimal
// without trailing zeros.
func ratString(r *big.Rat, frac int) string {
	s := r.FloatString(frac)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func intDigits(s string) int {
	ip, _, _ := strings.Cut(s, ".")
	return len(strings.TrimLeft(ip, "0"))
}

// flexString is a JSON string or number, as text.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	if string(b) == "null" {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexString(n.String())
	return nil
}

type discovered struct {
	Address   string     `json:"address"`
	URL       string     `json:"url"`
	LatencyMs flexString `json:"latency_ms"`
}

func decodeDiscovery(base event.LivepeerEnvelope, data json.RawMessage) ([]event.LivepeerDiscovery, error) {
	var list []discovered
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, invalid("discovery_results data: %v", err)
	}
	if len(list) > 1<<16 {
		return nil, invalid("discovery_results: %d orchestrators, limit %d", len(list), 1<<16)
	}
	rows := make([]event.LivepeerDiscovery, 0, len(list))
	for i, d := range list {
		ms, err := strconv.ParseUint(strings.TrimSpace(string(d.LatencyMs)), 10, 32)
		if err != nil {
			return nil, invalid("discovery_results[%d] latency_ms %q: want milliseconds", i, d.LatencyMs)
		}
		rows = append(rows, event.LivepeerDiscovery{LivepeerEnvelope: base, Index: uint16(i), Address: strings.ToLower(d.Address), URL: d.URL, LatencyMs: uint32(ms)})
	}
	return rows, nil
}

// priceInfo is go-livepeer's net.PriceInfo in JSON.
type priceInfo struct {
	PricePerUnit  int64  `json:"pricePerUnit"`
	PixelsPerUnit int64  `json:"pixelsPerUnit"`
	Capability    uint32 `json:"capability"`
	Constraint    string `json:"constraint"`
}

// orchCaps is go-livepeer's common.OrchNetworkCapabilities in JSON.
type orchCaps struct {
	Address            string          `json:"address"`
	LocalAddress       string          `json:"local_address"`
	OrchURI            string          `json:"orch_uri"`
	Capabilities       json.RawMessage `json:"capabilities"`
	PriceInfo          *priceInfo      `json:"price_info"`
	CapabilitiesPrices []priceInfo     `json:"capabilities_prices"`
	Hardware           json.RawMessage `json:"hardware"`
}

func decodeCapabilities(base event.LivepeerEnvelope, data json.RawMessage) ([]event.LivepeerOrchestrator, error) {
	var list []orchCaps
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		// The NetworkCapabilities wrapper, as go-livepeer's HTTP API has it.
		var w struct {
			Orchestrators []orchCaps `json:"orchestrators"`
		}
		if err := json.Unmarshal(t, &w); err != nil {
			return nil, invalid("network_capabilities data: %v", err)
		}
		list = w.Orchestrators
	} else if err := json.Unmarshal(data, &list); err != nil {
		return nil, invalid("network_capabilities data: %v", err)
	}
	rows := make([]event.LivepeerOrchestrator, 0, len(list))
	for i, o := range list {
		row := event.LivepeerOrchestrator{
			LivepeerEnvelope: base, Index: uint32(i), Address: strings.ToLower(o.Address), LocalAddress: strings.ToLower(o.LocalAddress),
			OrchURI: o.OrchURI, PricePerUnitWei: "0", Capabilities: rawOr(o.Capabilities, "{}"), Hardware: rawOr(o.Hardware, "[]"),
		}
		if o.PriceInfo != nil {
			if o.PriceInfo.PricePerUnit < 0 || o.PriceInfo.PixelsPerUnit < 0 {
				return nil, invalid("network_capabilities[%d]: negative price", i)
			}
			row.PricePerUnitWei, row.PixelsPerUnit = strconv.FormatInt(o.PriceInfo.PricePerUnit, 10), o.PriceInfo.PixelsPerUnit
		}
		cp := o.CapabilitiesPrices
		if cp == nil {
			cp = []priceInfo{}
		}
		b, err := json.Marshal(cp)
		if err != nil {
			return nil, invalid("network_capabilities[%d] prices: %v", i, err)
		}
		row.CapabilitiesPrices = string(b)
		rows = append(rows, row)
	}
	return rows, nil
}

func rawOr(r json.RawMessage, def string) string {
	r = bytes.TrimSpace(r)
	if len(r) == 0 || string(r) == "null" {
		return def
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, r); err != nil {
		return def
	}
	return buf.String()
}

// streamData is what stream_trace, ai_stream_status and ai_stream_events
// share; other fields stay in Data.
type streamData struct {
	Type       string          `json:"type"`
	Timestamp  json.RawMessage `json:"timestamp"`
	StreamID   flexString      `json:"stream_id"`
	RequestID  flexString      `json:"request_id"`
	Pipeline   string          `json:"pipeline"`
	PipelineID flexString      `json:"pipeline_id"`
	Message    string          `json:"message"`
	OrchInfo   *struct {
		Address string `json:"address"`
		URL     string `json:"url"`
	} `json:"orchestrator_info"`
}

func decodeStream(base event.LivepeerEnvelope, kind string, data json.RawMessage) (event.LivepeerStream, error) {
	var d streamData
	if err := json.Unmarshal(data, &d); err != nil {
		return event.LivepeerStream{}, invalid("%s data: %v", kind, err)
	}
	if kind == TypeStreamTrace && d.Type == "" {
		return event.LivepeerStream{}, invalid("stream_trace without a type")
	}
	if d.Type == "" && kind == TypeAIStreamStatus {
		d.Type = "status"
	}
	s := event.LivepeerStream{
		LivepeerEnvelope: base, Kind: kind, Type: d.Type, StreamID: string(d.StreamID), RequestID: string(d.RequestID),
		Pipeline: d.Pipeline, PipelineID: string(d.PipelineID), Message: d.Message, DataTimeMs: base.TimeMs, Data: rawOr(data, "{}"),
	}
	if len(d.Timestamp) > 0 {
		if ms, err := parseMs(d.Timestamp); err == nil && ms > 0 {
			s.DataTimeMs = ms
		}
	}
	if d.OrchInfo != nil {
		s.OrchAddress, s.OrchURL = strings.ToLower(d.OrchInfo.Address), d.OrchInfo.URL
	}
	return s, nil
}
