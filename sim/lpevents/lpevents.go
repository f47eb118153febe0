// Package lpevents generates the Kafka events a stock go-livepeer gateway
// publishes (-kafkaGatewayTopic) for a simulated fleet: create_new_payment,
// discovery_results, network_capabilities, stream_trace, ai_stream_status
// and ai_stream_events, in go-livepeer's envelope and field formats (face
// values as eth.FormatUnits prints them, win probabilities with 10
// decimals, prices as "P wei/pixel"). `loopgate dev --livepeer-events`
// feeds them to the ingest adapter; tests use the exact totals the
// generator keeps to check what the warehouse stored.
//
//	g, err := lpevents.New(lpevents.DefaultConfig(), deps.Deps{Rand: rand.New(rand.NewPCG(1, 2)), Clock: now})
//	evs := g.Events(1000)       // a realistic mix
//	tot := g.Totals()           // what they add up to, exactly
//	err = g.Run(ctx, 50, writer) // or: 50 events per second until ctx ends
package lpevents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
)

// Orchestrator is one simulated go-livepeer orchestrator.
type Orchestrator struct {
	Address string // ETH address, 0x + 40 hex digits
	URL     string // service URI
	// DiscoveryMs is the median GetOrchestratorInfo latency.
	DiscoveryMs float64
	// PriceMilliWeiPerPixel is its price in thousandths of a wei per pixel
	// (go-livepeer prints prices with 3 decimals).
	PriceMilliWeiPerPixel int64
}

// Config is the simulated gateway and its fleet.
type Config struct {
	// Gateway is the publishing gateway's address.
	Gateway string
	// Orchestrators is the fleet. Default: Fleet(6).
	Orchestrators []Orchestrator
}

// DefaultConfig is a gateway with six orchestrators.
func DefaultConfig() Config {
	return Config{Gateway: "0x000000000000000000000000000000000000cafe", Orchestrators: Fleet(6)}
}

// Fleet returns n orchestrators, from fast and cheap to slow and dear.
func Fleet(n int) []Orchestrator {
	out := make([]Orchestrator, n)
	for i := range out {
		out[i] = Orchestrator{
			Address:               fmt.Sprintf("0x%040x", 0xa11ce0+i),
			URL:                   fmt.Sprintf("https://orch-%d.example:8935", i),
			DiscoveryMs:           float64(20 + 60*i),
			PriceMilliWeiPerPixel: int64(1200 + 900*i),
		}
	}
	return out
}

// Validate reports a config that cannot work.
func (c Config) Validate() error {
	if len(c.Orchestrators) == 0 {
		return errors.New("lpevents: no orchestrators")
	}
	for _, o := range c.Orchestrators {
		if o.Address == "" || o.URL == "" || o.DiscoveryMs < 0 || o.PriceMilliWeiPerPixel < 0 {
			return fmt.Errorf("lpevents: orchestrator %+v: address, URL and non-negative latency and price are required", o)
		}
	}
	return nil
}

// Event is one generated go-livepeer event.
type Event struct {
	Type  string
	Key   []byte // the event id, as go-livepeer keys them
	Value []byte // the JSON envelope
}

// Totals is what the generated events add up to.
type Totals struct {
	Events        map[string]int // per type
	Payments      int
	FaceValueWei  *big.Int // Σ face value over payments
	EVWei         *big.Rat // Σ numTickets × face value × win probability
	Tickets       int64
	Discovery     int // rows: one per orchestrator listed
	Orchestrators int // rows: one per orchestrator per snapshot
	Streams       int // stream_trace + ai_stream_status + ai_stream_events
	// FirstSegments is the number of streams with a first processed segment.
	FirstSegments int
}

// Generator makes events; it is not safe for concurrent use.
type Generator struct {
	cfg    Config
	rnd    *rand.Rand
	now    func() time.Time
	seq    int
	tot    Totals
	stream int
}

// New returns a generator drawing from d.Rand (required) dated by d.Clock.
func New(cfg Config, d deps.Deps) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Rand == nil {
		return nil, errors.New("lpevents: a random source is required")
	}
	return &Generator{cfg: cfg, rnd: d.Rand, now: d.Now, tot: Totals{Events: map[string]int{}, FaceValueWei: new(big.Int), EVWei: new(big.Rat)}}, nil
}

// Totals returns the totals of every event generated so far.
func (g *Generator) Totals() Totals {
	t := g.tot
	t.Events = map[string]int{}
	for k, v := range g.tot.Events {
		t.Events[k] = v
	}
	t.FaceValueWei = new(big.Int).Set(g.tot.FaceValueWei)
	t.EVWei = new(big.Rat).Set(g.tot.EVWei)
	return t
}

// Events returns n events, or up to two more (a stream's trace events come
// together), of a realistic mix: mostly payments and stream traces, a
// discovery round every few dozen, a capabilities snapshot now and then.
func (g *Generator) Events(n int) []Event {
	out := make([]Event, 0, n)
	for len(out) < n {
		switch x := g.rnd.Float64(); {
		case x < 0.50:
			out = append(out, g.payment())
		case x < 0.60:
			out = append(out, g.discovery())
		case x < 0.63:
			out = append(out, g.capabilities())
		case x < 0.90:
			out = append(out, g.streamTrace()...)
		case x < 0.96:
			out = append(out, g.aiStatus())
		default:
			out = append(out, g.aiEvent())
		}
	}
	return out
}

// Writer is where Run writes (an eventlog.Writer on the gateway topic).
type Writer interface {
	Write(ctx context.Context, msgs ...eventlog.Message) error
}

// Run writes about rate events per second to w until ctx ends; it returns
// nil then, or the first write error.
func (g *Generator) Run(ctx context.Context, rate float64, w Writer) error {
	if rate <= 0 {
		return fmt.Errorf("lpevents: rate %v must be positive", rate)
	}
	const tick = 200 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	carry := 0.0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		carry += rate * tick.Seconds()
		n := int(carry)
		carry -= float64(n)
		if n == 0 {
			continue
		}
		evs := g.Events(n)
		msgs := make([]eventlog.Message, len(evs))
		for i, e := range evs {
			msgs[i] = eventlog.Message{Key: e.Key, Value: e.Value}
		}
		if err := w.Write(ctx, msgs...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("write go-livepeer events: %w", err)
		}
	}
}

// envelope builds go-livepeer's monitor.GatewayEvent.
func (g *Generator) envelope(typ string, data any) Event {
	g.seq++
	id := fmt.Sprintf("%08x-0000-4000-8000-%012x", g.rnd.Uint32(), g.seq)
	ts := g.now().UnixMilli()
	b, err := json.Marshal(map[string]any{"id": id, "type": typ, "timestamp": fmt.Sprint(ts), "gateway": g.cfg.Gateway, "data": data})
	if err != nil {
		panic(err) // only maps of strings and numbers: cannot fail
	}
	g.tot.Events[typ]++
	return Event{Type: typ, Key: []byte(id), Value: b}
}

var pipelines = []string{"text-to-image", "image-to-image", "live-video-to-video", "llm"}

func (g *Generator) payment() Event {
	o := g.pick()
	face := big.NewInt(1e15 + g.rnd.Int64N(3e17)) // 0.001 to 0.3 ETH
	winNum := 1 + g.rnd.Int64N(999_999)           // win probability num / 10^10
	tickets := 1 + g.rnd.Int64N(4)
	g.tot.Payments++
	g.tot.Tickets += tickets
	g.tot.FaceValueWei.Add(g.tot.FaceValueWei, face)
	ev := new(big.Rat).SetFrac(new(big.Int).Mul(face, big.NewInt(winNum*tickets)), big.NewInt(1e10))
	g.tot.EVWei.Add(g.tot.EVWei, ev)
	return g.envelope("create_new_payment", map[string]string{
		"clientIP":     "203.0.113.7",
		"requestID":    fmt.Sprintf("req-%d", g.seq),
		"capability":   pipelines[g.rnd.IntN(len(pipelines))],
		"manifestID":   fmt.Sprintf("manifest-%d", g.rnd.IntN(50)),
		"sessionID":    fmt.Sprintf("session-%d", g.rnd.IntN(200)),
		"recipient":    checksumLike(o.Address),
		"faceValue":    FormatFaceValue(face),
		"winProb":      fmt.Sprintf("0.%010d", winNum),
		"price":        fmt.Sprintf("%d.%03d wei/pixel", o.PriceMilliWeiPerPixel/1000, o.PriceMilliWeiPerPixel%1000),
		"numTickets":   fmt.Sprint(tickets),
		"sender":       g.cfg.Gateway,
		"orchestrator": o.URL,
	})
}

func (g *Generator) discovery() Event {
	list := make([]map[string]string, 0, len(g.cfg.Orchestrators))
	for _, o := range g.cfg.Orchestrators {
		lat := o.DiscoveryMs * (0.7 + 0.6*g.rnd.Float64())
		list = append(list, map[string]string{"address": o.Address, "url": o.URL, "latency_ms": fmt.Sprint(int64(lat))})
	}
	g.tot.Discovery += len(list)
	return g.envelope("discovery_results", list)
}

func (g *Generator) capabilities() Event {
	list := make([]map[string]any, 0, len(g.cfg.Orchestrators))
	for _, o := range g.cfg.Orchestrators {
		list = append(list, map[string]any{
			"address": o.Address, "local_address": o.Address, "orch_uri": o.URL,
			"capabilities": map[string]any{"bitstring": []int{1, 2}, "version": "0.8.0"},
			"price_info":   map[string]any{"pricePerUnit": o.PriceMilliWeiPerPixel, "pixelsPerUnit": 1000},
			"capabilities_prices": []map[string]any{
				{"pricePerUnit": o.PriceMilliWeiPerPixel, "pixelsPerUnit": 1000, "capability": 27, "constraint": "SG161222/RealVisXL_V4.0_Lightning"},
			},
			"hardware": []map[string]any{{"pipeline": "text-to-image", "model_id": "SG161222/RealVisXL_V4.0_Lightning"}},
		})
	}
	g.tot.Orchestrators += len(list)
	return g.envelope("network_capabilities", list)
}

// streamTrace is one step of a live stream: its request, first segment
// (delayed by the orchestrator's latency), or now and then a swap or no
// orchestrator at all.
func (g *Generator) streamTrace() []Event {
	g.stream++
	o := g.pick()
	sid := fmt.Sprintf("stream-%d", g.stream)
	base := func(typ string, ts int64, addr, url string) map[string]any {
		return map[string]any{
			"type": typ, "timestamp": ts, "stream_id": sid, "pipeline_id": "pip-1", "request_id": "req-" + sid,
			"orchestrator_info": map[string]any{"address": addr, "url": url},
		}
	}
	now := g.now().UnixMilli()
	g.tot.Streams++
	if g.rnd.Float64() < 0.1 {
		return []Event{g.envelope("stream_trace", base("gateway_no_orchestrators_available", now, "", ""))}
	}
	out := []Event{g.envelope("stream_trace", base("gateway_receive_stream_request", now, "", ""))}
	out = append(out, g.envelope("stream_trace", base("gateway_receive_first_processed_segment", now+int64(500+20*o.DiscoveryMs), o.Address, o.URL)))
	g.tot.Streams++
	g.tot.FirstSegments++
	if g.rnd.Float64() < 0.2 {
		sw := base("orchestrator_swap", now+5000, o.Address, o.URL)
		sw["message"] = "slow orchestrator"
		out = append(out, g.envelope("stream_trace", sw))
		g.tot.Streams++
	}
	return out
}

func (g *Generator) aiStatus() Event {
	g.tot.Streams++
	return g.envelope("ai_stream_status", map[string]any{
		"type": "status", "pipeline": "comfyui", "stream_id": fmt.Sprintf("stream-%d", max(g.stream, 1)), "request_id": "req",
		"inference_status": map[string]any{"fps": 24.5, "restart_count": 0},
	})
}

func (g *Generator) aiEvent() Event {
	g.tot.Streams++
	o := g.pick()
	return g.envelope("ai_stream_events", map[string]any{
		"type": "error", "message": "inference timed out", "stream_id": fmt.Sprintf("stream-%d", max(g.stream, 1)), "request_id": "req",
		"pipeline": "comfyui", "pipeline_id": "pip-1", "capability": "live-video-to-video",
		"orchestrator_info": map[string]any{"address": o.Address, "url": o.URL},
	})
}

// pick draws an orchestrator, the cheaper ones more often.
func (g *Generator) pick() Orchestrator {
	n := len(g.cfg.Orchestrators)
	i := min(int(float64(n)*g.rnd.Float64()*g.rnd.Float64()), n-1)
	return g.cfg.Orchestrators[i]
}

// FormatFaceValue prints wei as go-livepeer's eth.FormatUnits(v, "ETH"):
// "N WEI" below 10^16, else ETH with up to 18 decimals, zeros trimmed.
func FormatFaceValue(v *big.Int) string {
	if v.Cmp(big.NewInt(1e16)) < 0 {
		return v.String() + " WEI"
	}
	s := v.String()
	for len(s) < 18 {
		s = "0" + s
	}
	ip, fp := s[:len(s)-18], strings.TrimRight(s[len(s)-18:], "0")
	if ip == "" {
		ip = "0"
	}
	if fp == "" {
		return ip + " ETH"
	}
	return ip + "." + fp + " ETH"
}

// checksumLike mixes the case of an address as EIP-55 checksums do, so the
// adapter's lower-casing is exercised (not a real checksum).
func checksumLike(addr string) string {
	b := []byte(addr)
	for i := 2; i < len(b); i += 3 {
		if b[i] >= 'a' && b[i] <= 'f' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}
