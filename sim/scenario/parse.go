package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds what Parse accepts, so a stray large file fails fast.
const MaxFileSize = 4 << 20

// Load reads and parses the scenario file at path.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	sc, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	return sc, nil
}

// Parse decodes a scenario strictly (unknown fields are errors) and validates
// it. A validation error is one or more *FieldError joined with errors.Join.
func Parse(data []byte) (*Scenario, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("scenario is %d bytes, more than %d", len(data), MaxFileSize)
	}
	var f fileScenario
	if err := decodeStrict(data, &f); err != nil {
		return nil, fmt.Errorf("decode scenario: %w", err)
	}
	sc, errs := f.convert()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return sc, nil
}

func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty document")
		}
		return err
	}
	return nil
}

// The file* types mirror the YAML; convert turns them into the public types.
type fileScenario struct {
	Name          string             `yaml:"name"`
	Description   string             `yaml:"description"`
	Seed          int64              `yaml:"seed"`
	Duration      fileDuration       `yaml:"duration"`
	Warmup        fileDuration       `yaml:"warmup"`
	Regions       []string           `yaml:"regions"`
	RTT           map[string]float64 `yaml:"rtt_ms"`
	Classes       []fileClass        `yaml:"classes"`
	Clients       []fileClient       `yaml:"clients"`
	Orchestrators []fileOrchestrator `yaml:"orchestrators"`
	Timeline      []fileChange       `yaml:"timeline"`
	Gateway       *Gateway           `yaml:"gateway"`
}

type fileClass struct {
	ID         string  `yaml:"id"`
	Capability string  `yaml:"capability"`
	Model      string  `yaml:"model"`
	Units      float64 `yaml:"units"`
	SLOMs      float64 `yaml:"slo_ms"`
	TimeoutMs  float64 `yaml:"timeout_ms"`
	Value      float64 `yaml:"value"`
}

type fileClient struct {
	ID      string             `yaml:"id"`
	Region  string             `yaml:"region"`
	Rate    float64            `yaml:"rate"`
	Mix     map[string]float64 `yaml:"mix"`
	On      fileDuration       `yaml:"on"`
	Off     fileDuration       `yaml:"off"`
	OffRate float64            `yaml:"off_rate"`
}

type fileOffer struct {
	Price *float64 `yaml:"price"`
	P50Ms *float64 `yaml:"p50_ms"`
	P99Ms *float64 `yaml:"p99_ms"`
}

type fileOrchestrator struct {
	ID       string                `yaml:"id"`
	Region   string                `yaml:"region"`
	Address  string                `yaml:"address"`
	Stake    float64               `yaml:"stake"`
	Capacity int                   `yaml:"capacity"`
	Queue    int                   `yaml:"queue"`
	Classes  map[string]*fileOffer `yaml:"classes"`
	Fail     float64               `yaml:"fail"`
	FailMode FailMode              `yaml:"fail_mode"`
	Down     bool                  `yaml:"down"`
	Hang     bool                  `yaml:"hang"`
}

type fileChange struct {
	At           fileDuration `yaml:"at"`
	Orchestrator string       `yaml:"orchestrator"`
	Client       string       `yaml:"client"`
	Set          yaml.Node    `yaml:"set"`
}

type fileOrchPatch struct {
	Region   *string               `yaml:"region"`
	Address  *string               `yaml:"address"`
	Stake    *float64              `yaml:"stake"`
	Capacity *int                  `yaml:"capacity"`
	Queue    *int                  `yaml:"queue"`
	Fail     *float64              `yaml:"fail"`
	FailMode *FailMode             `yaml:"fail_mode"`
	Down     *bool                 `yaml:"down"`
	Hang     *bool                 `yaml:"hang"`
	Classes  map[string]*fileOffer `yaml:"classes"`
}

type fileClientPatch struct {
	Region *string            `yaml:"region"`
	Rate   *float64           `yaml:"rate"`
	Mix    map[string]float64 `yaml:"mix"`
}

// fileDuration accepts a Go duration string ("600s") or a number of seconds.
type fileDuration struct {
	d   time.Duration
	set bool
}

func (d *fileDuration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: duration must be a scalar such as \"600s\"", n.Line)
	}
	s := strings.TrimSpace(n.Value)
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > maxSeconds {
			return fmt.Errorf("line %d: duration %q out of range", n.Line, s)
		}
		d.d, d.set = time.Duration(v*float64(time.Second)), true
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: duration %q: want a number of seconds or a Go duration such as \"600s\"", n.Line, s)
	}
	d.d, d.set = v, true
	return nil
}

// maxSeconds keeps every duration far from time.Duration's overflow.
const maxSeconds = 1e8

func msDuration(ms float64) time.Duration {
	if math.IsNaN(ms) || math.IsInf(ms, 0) || math.Abs(ms) > maxSeconds*1e3 {
		return -1 // invalid: validation reports a negative value
	}
	return time.Duration(math.Round(ms * float64(time.Millisecond)))
}

func msPtr(ms *float64) *time.Duration {
	if ms == nil {
		return nil
	}
	d := msDuration(*ms)
	return &d
}

func (f *fileScenario) convert() (*Scenario, []error) {
	var errs []error
	sc := &Scenario{
		Name:        f.Name,
		Description: strings.TrimSpace(f.Description),
		Seed:        f.Seed,
		Duration:    f.Duration.d,
		Warmup:      f.Warmup.d,
		Regions:     f.Regions,
		RTT:         RTT{Pairs: map[[2]string]time.Duration{}},
		Gateway:     f.Gateway,
	}
	if !f.Duration.set {
		errs = append(errs, fieldErr("duration", "required"))
	}
	rttKeys := make([]string, 0, len(f.RTT))
	for k := range f.RTT {
		rttKeys = append(rttKeys, k)
	}
	sort.Strings(rttKeys)
	sameSet := false
	for _, k := range rttKeys {
		v := msDuration(f.RTT[k])
		path := "rtt_ms." + k
		if v < 0 {
			errs = append(errs, fieldErr(path, "got %v, want a round trip ≥ 0 ms", f.RTT[k]))
		}
		if k == "same_region" {
			sc.RTT.SameRegion, sameSet = v, true
			continue
		}
		a, b, ok := strings.Cut(k, "-")
		if !ok || a == "" || b == "" || strings.Contains(b, "-") {
			errs = append(errs, fieldErr(path, "want same_region or a pair of regions such as FRA-LAX"))
			continue
		}
		if a == b {
			errs = append(errs, fieldErr(path, "a region with itself: use same_region"))
			continue
		}
		key := pairKey(a, b)
		if _, dup := sc.RTT.Pairs[key]; dup {
			errs = append(errs, fieldErr(path, "pair given twice (%s-%s and %s-%s): rtt is symmetric", a, b, b, a))
			continue
		}
		sc.RTT.Pairs[key] = v
	}
	if !sameSet {
		errs = append(errs, fieldErr("rtt_ms.same_region", "required"))
	}
	for _, c := range f.Classes {
		sc.Classes = append(sc.Classes, Class{
			ID: c.ID, Capability: c.Capability, Model: c.Model, Units: c.Units,
			SLO: msDuration(c.SLOMs), Timeout: msDuration(c.TimeoutMs), Value: c.Value,
		})
	}
	for _, c := range f.Clients {
		sc.Clients = append(sc.Clients, Client{ID: c.ID, Region: c.Region, Rate: c.Rate, Mix: c.Mix, On: c.On.d, Off: c.Off.d, OffRate: c.OffRate})
	}
	for i, o := range f.Orchestrators {
		mode := o.FailMode
		if mode == "" {
			mode = FailFast
		}
		orch := Orchestrator{
			ID: o.ID, Region: o.Region, Address: o.Address, Stake: o.Stake,
			Capacity: o.Capacity, Queue: o.Queue, Fail: o.Fail, FailMode: mode,
			Down: o.Down, Hang: o.Hang, Classes: map[string]Offer{},
		}
		for id, off := range o.Classes {
			path := fmt.Sprintf("orchestrators[%d].classes.%s", i, id)
			if off == nil || off.Price == nil || off.P50Ms == nil || off.P99Ms == nil {
				errs = append(errs, fieldErr(path, "want price, p50_ms and p99_ms"))
				continue
			}
			orch.Classes[id] = Offer{Price: *off.Price, P50: msDuration(*off.P50Ms), P99: msDuration(*off.P99Ms)}
		}
		sc.Orchestrators = append(sc.Orchestrators, orch)
	}
	for i, c := range f.Timeline {
		path := fmt.Sprintf("timeline[%d]", i)
		ch := Change{At: c.At.d, Orchestrator: c.Orchestrator, Client: c.Client}
		if !c.At.set {
			errs = append(errs, fieldErr(path+".at", "required"))
		}
		p, err := decodePatch(c)
		if err != nil {
			errs = append(errs, fieldErr(path+".set", "%v", err))
		}
		ch.Set = p
		sc.Timeline = append(sc.Timeline, ch)
	}
	return sc, errs
}

// decodePatch decodes a timeline entry's set strictly, as the target's kind.
func decodePatch(c fileChange) (Patch, error) {
	if (c.Client == "") == (c.Orchestrator == "") {
		return Patch{}, errors.New("want exactly one of orchestrator and client")
	}
	if c.Set.Kind == 0 {
		return Patch{}, errors.New("required")
	}
	if c.Set.Kind != yaml.MappingNode {
		return Patch{}, errors.New("want a mapping of fields to set")
	}
	if len(c.Set.Content) == 0 {
		return Patch{}, errors.New("sets nothing")
	}
	raw, err := yaml.Marshal(&c.Set)
	if err != nil {
		return Patch{}, err
	}
	if c.Client != "" {
		var fp fileClientPatch
		if err := decodeStrict(raw, &fp); err != nil {
			return Patch{}, fmt.Errorf("client fields: %w", err)
		}
		return Patch{Region: fp.Region, Rate: fp.Rate, Mix: fp.Mix}, nil
	}
	var fp fileOrchPatch
	if err := decodeStrict(raw, &fp); err != nil {
		return Patch{}, fmt.Errorf("orchestrator fields: %w", err)
	}
	p := Patch{
		Region: fp.Region, Address: fp.Address, Stake: fp.Stake, Capacity: fp.Capacity,
		Queue: fp.Queue, Fail: fp.Fail, FailMode: fp.FailMode, Down: fp.Down, Hang: fp.Hang,
	}
	if fp.Classes != nil {
		p.Classes = map[string]*OfferPatch{}
		for id, off := range fp.Classes {
			if off == nil {
				p.Classes[id] = nil
				continue
			}
			p.Classes[id] = &OfferPatch{Price: off.Price, P50: msPtr(off.P50Ms), P99: msPtr(off.P99Ms)}
		}
	}
	return p, nil
}
