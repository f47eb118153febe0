package ingest_test

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/ingest"
)

// go-livepeer's own shapes (monitor.GatewayEvent, server/segment_rpc.go,
// discovery/discovery.go, core/livepeernode.go, server/ai_live_video.go).
const (
	paymentEvent   = `{"id":"6f1c","type":"create_new_payment","timestamp":"1767225600000","gateway":"0xGW","data":{"clientIP":"203.0.113.7","requestID":"r1","capability":"text-to-image","manifestID":"m1","sessionID":"s1","recipient":"0xAbC0000000000000000000000000000000000001","faceValue":"0.123456789012345678 ETH","winProb":"0.0000123457","price":"1234.500 wei/pixel","numTickets":"3","sender":"0xSender","orchestrator":"https://o1.example:8935"}}`
	discoveryEvent = `{"id":"d1","type":"discovery_results","timestamp":"1767225600001","gateway":"0xgw","data":[{"address":"0xAA","url":"https://a:8935","latency_ms":"35"},{"address":"0xbb","url":"https://b:8935","latency_ms":"420"}]}`
	capsEvent      = `{"id":"c1","type":"network_capabilities","timestamp":"1767225600002","gateway":"0xgw","data":[{"address":"0xAA","local_address":"0xAA","orch_uri":"https://a:8935","capabilities":{"bitstring":[1]},"price_info":{"pricePerUnit":1200,"pixelsPerUnit":1},"capabilities_prices":[{"pricePerUnit":5,"pixelsPerUnit":1,"capability":27,"constraint":"sdxl"}],"hardware":[{"pipeline":"text-to-image"}]}]}`
	traceEvent     = `{"id":"t1","type":"stream_trace","timestamp":"1767225600003","gateway":"0xgw","data":{"type":"gateway_receive_first_processed_segment","timestamp":1767225600500,"stream_id":"st1","pipeline_id":"p1","request_id":"r1","orchestrator_info":{"address":"0xAA","url":"https://a:8935"}}}`
	statusEvent    = `{"id":"a1","type":"ai_stream_status","timestamp":"1767225600004","data":{"type":"status","stream_id":"st1","pipeline":"comfyui"}}`
)

func TestDecodeLivepeer(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		reason  string // "" = ok, "unknown" = ErrUnknownType
		payment *event.LivepeerPayment
		rows    int
	}{
		{"payment", paymentEvent, "", &event.LivepeerPayment{
			LivepeerEnvelope: event.LivepeerEnvelope{EventID: "6f1c", Gateway: "0xgw", TimeMs: 1767225600000},
			RequestID:        "r1", SessionID: "s1", ManifestID: "m1", Capability: "text-to-image", Orchestrator: "https://o1.example:8935",
			Recipient: "0xabc0000000000000000000000000000000000001", Sender: "0xsender", NumTickets: 3,
			FaceValueWei: "123456789012345678", WinProb: "0.0000123457", EVWei: "4572481440329.1481106538", // 3 × 123456789012345678 × 0.0000123457, exactly
			PricePerUnitWei: "1234.5", PriceUnit: "pixel",
		}, 1},
		{"payment in WEI", strings.Replace(paymentEvent, "0.123456789012345678 ETH", "9999999999999999 WEI", 1), "", nil, 1},
		{"discovery", discoveryEvent, "", nil, 2},
		{"capabilities", capsEvent, "", nil, 1},
		{"stream trace", traceEvent, "", nil, 1},
		{"ai stream status", statusEvent, "", nil, 1},
		{"no id uses the fallback", strings.Replace(statusEvent, `"id":"a1",`, "", 1), "", nil, 1},
		{"timestamp as a number", strings.Replace(statusEvent, `"1767225600004"`, "1767225600004", 1), "", nil, 1},
		{"unknown type", `{"id":"u","type":"stream_ingest_metrics","timestamp":"1","data":{}}`, "unknown", nil, 0},
		{"not json", `{"id":`, "malformed", nil, 0},
		{"no type", `{"id":"x","timestamp":"1","data":{}}`, "invalid", nil, 0},
		{"bad timestamp", strings.Replace(statusEvent, `"1767225600004"`, `"soon"`, 1), "invalid", nil, 0},
		{"no data", `{"id":"x","type":"stream_trace","timestamp":"1"}`, "invalid", nil, 0},
		{"face value too precise", strings.Replace(paymentEvent, "0.123456789012345678 ETH", "0.1234567890123456789 ETH", 1), "invalid", nil, 0},
		{"face value without unit", strings.Replace(paymentEvent, "0.123456789012345678 ETH", "12", 1), "invalid", nil, 0},
		{"face value too large", strings.Replace(paymentEvent, "0.123456789012345678 ETH", "99999999999 ETH", 1), "invalid", nil, 0},
		{"negative face value", strings.Replace(paymentEvent, "0.123456789012345678 ETH", "-1 WEI", 1), "invalid", nil, 0},
		{"win probability above 1", strings.Replace(paymentEvent, "0.0000123457", "1.5", 1), "invalid", nil, 0},
		{"win probability as float", strings.Replace(paymentEvent, "0.0000123457", "1e-5", 1), "invalid", nil, 0},
		{"bad ticket count", strings.Replace(paymentEvent, `"numTickets":"3"`, `"numTickets":"-3"`, 1), "invalid", nil, 0},
		{"price without unit", strings.Replace(paymentEvent, "1234.500 wei/pixel", "1234.5", 1), "invalid", nil, 0},
		{"discovery latency not a number", strings.Replace(discoveryEvent, `"35"`, `"fast"`, 1), "invalid", nil, 0},
		{"stream trace without type", strings.Replace(traceEvent, `"type":"gateway_receive_first_processed_segment",`, "", 1), "invalid", nil, 0},
		{"too large", `{"id":"x","type":"stream_trace","timestamp":"1","data":{"type":"` + strings.Repeat("x", 2000) + `"}}`, "too_large", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b event.LivepeerBatch
			_, err := ingest.DecodeLivepeer([]byte(tt.in), "kafka:t/0/7", 1024, &b)
			var le *ingest.LivepeerError
			switch {
			case tt.reason == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.reason == "unknown" && !errors.Is(err, ingest.ErrUnknownType):
				t.Fatalf("got %v, want ErrUnknownType", err)
			case tt.reason != "" && tt.reason != "unknown" && (!errors.As(err, &le) || le.Reason != tt.reason):
				t.Fatalf("got %v, want a %s error", err, tt.reason)
			}
			if got := b.Len(); got != tt.rows {
				t.Fatalf("got %d rows, want %d", got, tt.rows)
			}
			if tt.payment != nil && b.Payments[0] != *tt.payment {
				t.Errorf("got %+v,\nwant %+v", b.Payments[0], *tt.payment)
			}
		})
	}
}

func TestDecodeLivepeerFallbackID(t *testing.T) {
	var b event.LivepeerBatch
	if _, err := ingest.DecodeLivepeer([]byte(strings.Replace(statusEvent, `"id":"a1",`, "", 1)), "kafka:t/0/7", 0, &b); err != nil {
		t.Fatal(err)
	}
	if got := b.Streams[0].EventID; got != "kafka:t/0/7" {
		t.Errorf("got id %q, want the Kafka position", got)
	}
}

// TestDecodeLivepeerEVExact: the expected value is the exact product, even
// where float64 would round it.
func TestDecodeLivepeerEVExact(t *testing.T) {
	var b event.LivepeerBatch
	if _, err := ingest.DecodeLivepeer([]byte(paymentEvent), "", 0, &b); err != nil {
		t.Fatal(err)
	}
	want := new(big.Rat).Mul(big.NewRat(3*123456789012345678, 1), big.NewRat(123457, 10_000_000_000))
	got, _ := new(big.Rat).SetString(b.Payments[0].EVWei)
	if got.Cmp(want) != 0 {
		t.Errorf("got EV %s, want %s", b.Payments[0].EVWei, want.FloatString(10))
	}
}

// FuzzDecodeLivepeer: any input either decodes into rows whose amounts are
// in the documented forms, or fails with a typed error leaving the batch
// untouched; it never panics.
func FuzzDecodeLivepeer(f *testing.F) {
	for _, s := range []string{paymentEvent, discoveryEvent, capsEvent, traceEvent, statusEvent, `{"type":"x"}`, `[]`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var b event.LivepeerBatch
		_, err := ingest.DecodeLivepeer(in, "kafka:t/0/0", 1<<20, &b)
		if err != nil {
			var le *ingest.LivepeerError
			if !errors.Is(err, ingest.ErrUnknownType) && !errors.As(err, &le) {
				t.Fatalf("untyped error %v", err)
			}
			if b.Len() != 0 {
				t.Fatalf("got %d rows after an error, want 0", b.Len())
			}
			return
		}
		for _, p := range b.Payments {
			for _, v := range []string{p.FaceValueWei, p.WinProb, p.EVWei, p.PricePerUnitWei} {
				r, ok := new(big.Rat).SetString(v)
				if !ok || r.Sign() < 0 || strings.ContainsAny(v, "eE+-/") {
					t.Fatalf("amount %q is not a non-negative decimal", v)
				}
				if ip, _, _ := strings.Cut(v, "."); len(strings.TrimLeft(ip, "0")) > event.MaxWeiDigits {
					t.Fatalf("amount %q has over %d integer digits", v, event.MaxWeiDigits)
				}
			}
		}
		for _, r := range envs(b) {
			if r.EventID == "" || r.TimeMs <= 0 {
				t.Fatalf("row without id or time: %+v", r)
			}
		}
	})
}

func envs(b event.LivepeerBatch) []event.LivepeerEnvelope {
	var out []event.LivepeerEnvelope
	for _, r := range b.Payments {
		out = append(out, r.LivepeerEnvelope)
	}
	for _, r := range b.Discovery {
		out = append(out, r.LivepeerEnvelope)
	}
	for _, r := range b.Orchestrators {
		out = append(out, r.LivepeerEnvelope)
	}
	for _, r := range b.Streams {
		out = append(out, r.LivepeerEnvelope)
	}
	return out
}
