// Package fleetgen writes large synthetic scenarios in the benchmark's
// format (sim/scenario): a fleet of any size over up to eight Livepeer
// regions and up to five AI classes, Poisson demand at a chosen share of
// the fleet's capacity, and short faults on the timeline. Everything is a
// pure function of the Config, so the same Config gives the same bytes.
//
//	yaml, err := fleetgen.Generate(fleetgen.DefaultConfig()) // 200 orchestrators, 8 regions, 5 classes
//	sc, err := scenario.Parse(yaml)
//
// The oracle's scale benchmark (sim/oracle) and the large-fleet scenario
// in testdata/ come from it.
package fleetgen

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config shapes a generated scenario.
type Config struct {
	Name          string
	Seed          uint64
	Orchestrators int           // Default 200.
	Regions       int           // 1..8; default 8.
	Classes       int           // 1..5; default 5.
	Load          float64       // demand ÷ fleet capacity per class. Default 0.7.
	Duration      time.Duration // Default 600s.
	Warmup        time.Duration // Default 60s.
	// Faults is the number of short faults on the timeline: an orchestrator
	// goes down, fails half its attempts, hangs or slows down three-fold,
	// for 15–45 s. Default 24.
	Faults int
	// Kinds are the faults drawn from, each equally likely: FaultDown,
	// FaultFail, FaultHang, FaultSlow. Default (empty): all four.
	Kinds []string
}

// Fault kinds for Config.Kinds.
const (
	FaultDown = "down" // connections refused at once
	FaultFail = "fail" // half the attempts fail
	FaultHang = "hang" // accepts, never answers: only timeouts reveal it
	FaultSlow = "slow" // every offer three times slower
)

// kinds returns c.Kinds, or all four in the order the draw has always used.
func (c Config) kinds() []string {
	if len(c.Kinds) == 0 {
		return []string{FaultDown, FaultFail, FaultHang, FaultSlow}
	}
	return c.Kinds
}

// DefaultConfig returns the defaults written on each field: the
// 200-orchestrator, 8-region, 5-class fleet with short faults.
func DefaultConfig() Config {
	return Config{
		Name: "fleet-200", Seed: 200, Orchestrators: 200, Regions: 8, Classes: 5,
		Load: 0.7, Duration: 600 * time.Second, Warmup: 60 * time.Second, Faults: 24,
	}
}

// Validate reports a config Generate cannot use.
func (c Config) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("fleetgen: want a name")
	case c.Orchestrators < 1:
		return errors.New("fleetgen: want at least one orchestrator")
	case c.Regions < 1 || c.Regions > len(regions):
		return fmt.Errorf("fleetgen: regions %d, want 1..%d", c.Regions, len(regions))
	case c.Classes < 1 || c.Classes > len(classes):
		return fmt.Errorf("fleetgen: classes %d, want 1..%d", c.Classes, len(classes))
	case slices.ContainsFunc(c.Kinds, func(k string) bool {
		return !slices.Contains([]string{FaultDown, FaultFail, FaultHang, FaultSlow}, k)
	}):
		return fmt.Errorf("fleetgen: fault kinds %v, want among down, fail, hang, slow", c.Kinds)
	case !(c.Load > 0 && c.Load < 1.5):
		return fmt.Errorf("fleetgen: load %v, want in (0, 1.5)", c.Load)
	case c.Duration <= c.Warmup || c.Warmup < 0 || c.Faults < 0:
		return errors.New("fleetgen: want duration > warmup ≥ 0 and faults ≥ 0")
	}
	return nil
}

// The tables below are read-only.

// regions are Livepeer leaderboard codes with the share of orchestrators
// and of demand each gets.
var regions = []struct {
	code   string
	weight float64
}{{"FRA", 0.18}, {"NYC", 0.16}, {"LAX", 0.14}, {"LON", 0.12}, {"MDW", 0.12}, {"SIN", 0.12}, {"PRG", 0.08}, {"SAO", 0.08}}

// rtt between regions in ms, by the order of regions.
var rtt = map[[2]string]int{
	{"FRA", "NYC"}: 85, {"FRA", "LAX"}: 150, {"FRA", "LON"}: 15, {"FRA", "MDW"}: 105, {"FRA", "SIN"}: 165, {"FRA", "PRG"}: 12, {"FRA", "SAO"}: 200,
	{"NYC", "LAX"}: 65, {"NYC", "LON"}: 75, {"NYC", "MDW"}: 20, {"NYC", "SIN"}: 230, {"NYC", "PRG"}: 95, {"NYC", "SAO"}: 115,
	{"LAX", "LON"}: 140, {"LAX", "MDW"}: 50, {"LAX", "SIN"}: 170, {"LAX", "PRG"}: 160, {"LAX", "SAO"}: 160,
	{"LON", "MDW"}: 95, {"LON", "SIN"}: 170, {"LON", "PRG"}: 25, {"LON", "SAO"}: 190,
	{"MDW", "SIN"}: 210, {"MDW", "PRG"}: 115, {"MDW", "SAO"}: 135,
	{"SIN", "PRG"}: 175, {"SIN", "SAO"}: 330,
	{"PRG", "SAO"}: 210,
}

// classes: what is asked, how long it takes (p50, p99 at a typical
// orchestrator), its price per unit and how popular it is.
var classes = []struct {
	id, capability, model string
	units                 float64
	slo, timeout          int // ms
	value                 float64
	p50, p99              float64 // ms
	price                 float64 // USD per unit
	share                 float64 // of orchestrators serving it, and of demand
}{
	{"t2i-sdxl", "text-to-image", "stabilityai/sdxl-turbo", 1048576, 3000, 12000, 0.02, 900, 2600, 2.6e-9, 0.35},
	{"llm-llama", "llm", "meta-llama/Meta-Llama-3.1-8B-Instruct", 256, 2500, 10000, 0.01, 600, 1800, 4.5e-6, 0.25},
	{"a2t-whisper", "audio-to-text", "openai/whisper-large-v3", 30000, 2000, 8000, 0.008, 500, 1500, 4.0e-8, 0.15},
	{"upscale-x4", "upscale", "stabilityai/stable-diffusion-x4-upscaler", 4194304, 5000, 15000, 0.015, 1800, 4500, 7.0e-10, 0.15},
	{"i2v-svd", "image-to-video", "stabilityai/stable-video-diffusion-img2vid-xt", 14680064, 15000, 40000, 0.05, 6000, 13000, 6.0e-10, 0.10},
}

type offer struct {
	class    int
	price    float64
	p50, p99 int
}

type orch struct {
	id, region string
	stake      int
	capacity   int
	fail       float64
	slowFail   bool
	offers     []offer
}

// Generate writes the scenario's YAML.
func Generate(cfg Config) ([]byte, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x666c656574)) // "fleet"
	regs := regions[:cfg.Regions]
	cls := classes[:cfg.Classes]
	pick := func(weights func(i int) float64, n int) int {
		sum := 0.0
		for i := 0; i < n; i++ {
			sum += weights(i)
		}
		u := rng.Float64() * sum
		for i := 0; i < n; i++ {
			if u -= weights(i); u < 0 {
				return i
			}
		}
		return n - 1
	}

	// The fleet.
	orchs := make([]orch, cfg.Orchestrators)
	perRegion := map[string]int{}
	capWork := make([]float64, len(cls)) // server-seconds per second each class can get
	for i := range orchs {
		r := regs[pick(func(k int) float64 { return regs[k].weight }, len(regs))].code
		perRegion[r]++
		o := orch{
			id: fmt.Sprintf("%s-%d", strings.ToLower(r), perRegion[r]), region: r,
			// Stake is heavy-tailed: a few whales, many small ones.
			stake:    int(math.Round(100 * math.Exp(2*rng.NormFloat64()+1))),
			capacity: 1 + rng.IntN(4),
			fail:     round(0.001+0.01*rng.ExpFloat64(), 4),
			slowFail: rng.IntN(5) == 0,
		}
		if rng.IntN(10) == 0 {
			o.fail = round(0.03+0.07*rng.Float64(), 3) // flaky
		}
		speed := math.Exp(0.35 * rng.NormFloat64()) // > 1 is slower
		dear := math.Exp(0.3*rng.NormFloat64() - 0.25*(speed-1))
		n := 1 + pick(func(k int) float64 { return []float64{0.45, 0.35, 0.2}[k] }, 3)
		served := map[int]bool{}
		for len(served) < min(n, len(cls)) {
			served[pick(func(k int) float64 { return cls[k].share }, len(cls))] = true
		}
		for c := range cls {
			if !served[c] {
				continue
			}
			p50 := cls[c].p50 * speed
			p99 := p50 * cls[c].p99 / cls[c].p50 * math.Exp(0.15*rng.NormFloat64())
			o.offers = append(o.offers, offer{
				class: c, price: round(cls[c].price*dear, 3),
				p50: int(math.Round(p50)), p99: int(math.Round(math.Max(p99, p50*1.2))),
			})
		}
		for _, off := range o.offers {
			// Capacity is shared; count each class its share of servers at
			// the mean lognormal service time.
			sigma := math.Log(float64(off.p99)/float64(off.p50)) / 2.326
			mean := float64(off.p50) / 1000 * math.Exp(sigma*sigma/2)
			capWork[off.class] += float64(o.capacity) / float64(len(o.offers)) / mean
		}
		orchs[i] = o
	}

	// Demand: Load × what each class can get, spread over regions.
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\n", cfg.Name)
	fmt.Fprintf(&b, "description: >\n  Generated by sim/fleetgen (seed %d): %d orchestrators in %d regions serving %d classes,\n  demand at %.0f%% of capacity, %d short faults (%s).\n",
		cfg.Seed, cfg.Orchestrators, cfg.Regions, cfg.Classes, 100*cfg.Load, cfg.Faults, faultWords(cfg.kinds()))
	fmt.Fprintf(&b, "seed: %d\nduration: %s\nwarmup: %s\n", cfg.Seed, secs(cfg.Duration), secs(cfg.Warmup))
	codes := make([]string, len(regs))
	for i, r := range regs {
		codes[i] = r.code
	}
	fmt.Fprintf(&b, "regions: [%s]\nrtt_ms:\n  same_region: 4\n", strings.Join(codes, ", "))
	for i := range regs {
		for j := i + 1; j < len(regs); j++ {
			d, ok := rtt[[2]string{codes[i], codes[j]}]
			if !ok {
				d = rtt[[2]string{codes[j], codes[i]}]
			}
			fmt.Fprintf(&b, "  %s-%s: %d\n", codes[i], codes[j], d)
		}
	}
	b.WriteString("classes:\n")
	for _, c := range cls {
		fmt.Fprintf(&b, "  - {id: %s, capability: %s, model: %s, units: %g, slo_ms: %d, timeout_ms: %d, value: %g}\n",
			c.id, c.capability, c.model, c.units, c.slo, c.timeout, c.value)
	}
	b.WriteString("clients:\n")
	for _, r := range regs {
		rate := 0.0
		demand := make([]float64, len(cls))
		for c := range cls {
			demand[c] = cfg.Load * capWork[c] * r.weight / weightSum(regs)
			rate += demand[c]
		}
		if rate <= 0 {
			continue
		}
		rate = round(rate, 4)
		var mix []string
		left := 1.0
		last := -1
		for c := range cls {
			if demand[c] > 0 {
				last = c
			}
		}
		for c := range cls {
			if demand[c] <= 0 {
				continue
			}
			// Six decimals each, the last taking the rest: the sum is
			// within 5e-7 of 1, inside the format's 1e-6.
			share := math.Round(demand[c]/sumOf(demand)*1e6) / 1e6
			if c == last {
				share = math.Round(left*1e6) / 1e6
			}
			left -= share
			mix = append(mix, fmt.Sprintf("%s: %s", cls[c].id, strconv.FormatFloat(share, 'g', -1, 64)))
		}
		fmt.Fprintf(&b, "  - {id: %s-clients, region: %s, rate: %g, mix: {%s}}\n", strings.ToLower(r.code), r.code, rate, strings.Join(mix, ", "))
	}
	b.WriteString("orchestrators:\n")
	for _, o := range orchs {
		mode := "fast"
		if o.slowFail {
			mode = "slow"
		}
		fmt.Fprintf(&b, "  - {id: %s, region: %s, stake: %d, capacity: %d, queue: %d, fail: %g, fail_mode: %s,\n     classes: {",
			o.id, o.region, o.stake, o.capacity, 2*o.capacity, o.fail, mode)
		for k, off := range o.offers {
			if k > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s: {price: %g, p50_ms: %d, p99_ms: %d}", cls[off.class].id, off.price, off.p50, off.p99)
		}
		b.WriteString("}}\n")
	}

	// Short faults, each undone, in time order.
	type entry struct {
		at   time.Duration
		line string
	}
	var tl []entry
	span := cfg.Duration - cfg.Warmup - 90*time.Second // every fault is over 15 s before the end
	for f := 0; f < cfg.Faults && span > 0; f++ {
		o := orchs[rng.IntN(len(orchs))]
		at := cfg.Warmup + 30*time.Second + time.Duration(rng.Int64N(int64(span/time.Second)))*time.Second
		dur := time.Duration(15+rng.IntN(31)) * time.Second
		var on, off string
		kinds := cfg.kinds()
		switch kinds[rng.IntN(len(kinds))] {
		case FaultDown:
			on, off = "{down: true}", "{down: false}"
		case FaultFail:
			on, off = "{fail: 0.5}", fmt.Sprintf("{fail: %g}", o.fail)
		case FaultHang:
			on, off = "{hang: true}", "{hang: false}"
		default:
			var slow, back []string
			for _, x := range o.offers {
				slow = append(slow, fmt.Sprintf("%s: {p50_ms: %d, p99_ms: %d}", cls[x.class].id, 3*x.p50, 3*x.p99))
				back = append(back, fmt.Sprintf("%s: {p50_ms: %d, p99_ms: %d}", cls[x.class].id, x.p50, x.p99))
			}
			on = "{classes: {" + strings.Join(slow, ", ") + "}}"
			off = "{classes: {" + strings.Join(back, ", ") + "}}"
		}
		tl = append(tl, entry{at, fmt.Sprintf("orchestrator: %s, set: %s", o.id, on)})
		tl = append(tl, entry{at + dur, fmt.Sprintf("orchestrator: %s, set: %s", o.id, off)})
	}
	// Stable insertion sort: equal times keep their order.
	for i := 1; i < len(tl); i++ {
		for j := i; j > 0 && tl[j].at < tl[j-1].at; j-- {
			tl[j], tl[j-1] = tl[j-1], tl[j]
		}
	}
	if len(tl) == 0 {
		b.WriteString("timeline: []\n")
	} else {
		b.WriteString("timeline:\n")
		for _, e := range tl {
			fmt.Fprintf(&b, "  - {at: %s, %s}\n", secs(e.at), e.line)
		}
	}
	return []byte(b.String()), nil
}

func secs(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) + "s" }

// round keeps digits significant digits.
func round(v float64, digits int) float64 {
	if v == 0 {
		return 0
	}
	p := math.Pow(10, float64(digits-1-int(math.Floor(math.Log10(math.Abs(v))))))
	return math.Round(v*p) / p
}

func weightSum(regs []struct {
	code   string
	weight float64
}) float64 {
	s := 0.0
	for _, r := range regs {
		s += r.weight
	}
	return s
}

func sumOf(v []float64) float64 {
	s := 0.0
	for _, e := range v {
		s += e
	}
	return s
}

// faultWords names the kinds as the description says them.
func faultWords(kinds []string) string {
	words := map[string]string{FaultDown: "down", FaultFail: "failing", FaultHang: "hung", FaultSlow: "slow"}
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = words[k]
	}
	return strings.Join(out, ", ")
}
