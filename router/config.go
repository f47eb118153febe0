package router

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"time"

	"github.com/loopgate/loopgate/event"
)

// Config is everything the router needs. Every field has a default
// (DefaultConfig); a zero numeric field in a capability entry means "the
// default written beside it". Reload accepts a new Config at run time; only
// DialTimeout and MaxIdleConnsPerHost are read once, at New.
type Config struct {
	// GatewayID names this router in every outcome. Default "loopgate".
	GatewayID string `yaml:"gateway_id"`
	// GatewayRegion is this router's region (Livepeer leaderboard code, e.g. "FRA"). Default empty.
	GatewayRegion string `yaml:"gateway_region"`

	// MaxBodyBytes caps a request body; larger bodies are answered 413. The
	// body is buffered in memory so it can be sent again on a retry. Default 32 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// BodyMemoryPerKey caps the bytes of request bodies one API key may
	// have buffered at once, over all its requests in flight; a request
	// that would pass it is answered 429 (reason body_memory_per_key) with
	// Retry-After. At least MaxBodyBytes. Default 96 MiB (three bodies at
	// the limit).
	BodyMemoryPerKey int64 `yaml:"body_memory_per_key"`
	// BodyMemory caps the bytes of request bodies the router has buffered
	// at once, over every key; past it a request is answered 503 (reason
	// body_memory) with Retry-After. At least BodyMemoryPerKey. Default 512 MiB.
	BodyMemory int64 `yaml:"body_memory"`
	// Server configures the client-facing HTTP server (Serve). Read at
	// Serve only.
	Server ServerConfig `yaml:"server"`
	// AttemptTimeout bounds one attempt until the orchestrator's response
	// headers arrive; passing it is a retryable timeout. Default 30s.
	AttemptTimeout time.Duration `yaml:"attempt_timeout"`
	// DerivedTimeout shortens an attempt's timeout to what the
	// orchestrator's own time to first byte for the class says (Margin ×
	// its Quantile, see TimeoutConfig), so a hung orchestrator is abandoned
	// and the request retried elsewhere long before attempt_timeout. The
	// simulator's closed loop applies the same rule. It reads latency per
	// orchestrator and class, not per request: where one class's requests
	// differ widely (long generations after a run of short ones), raise
	// Min above the longest you expect or set disabled, or such requests
	// are cut and retried. Default on: DefaultTimeoutConfig.
	DerivedTimeout TimeoutConfig `yaml:"derived_timeout"`
	// RequestTimeout bounds a whole request, every attempt and the streamed
	// response included. Default 90s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// DialTimeout bounds a TCP connect to an orchestrator. Default 5s. Read at New only.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// MaxIdleConnsPerHost keeps this many idle connections per orchestrator. Default 64. Read at New only.
	MaxIdleConnsPerHost int `yaml:"max_idle_conns_per_host"`
	// FastFailure: an attempt that fails (5xx, timeout, cancel) sooner than
	// this after it started is taken as refused before service began and is
	// not billed. Default 250ms.
	FastFailure time.Duration `yaml:"fast_failure"`
	// MaxAttempts per request, the first included. Default 3.
	MaxAttempts int `yaml:"max_attempts"`
	// RetryBudget bounds retries across requests.
	RetryBudget RetryBudgetConfig `yaml:"retry_budget"`
	// Selection tunes how an orchestrator is drawn.
	Selection SelectionConfig `yaml:"selection"`
	// Shaping tunes concurrency limits, the edge queue, admission and tiers.
	Shaping ShapingConfig `yaml:"shaping"`

	// TrustClientRegionHeader: when true, a valid X-Loopgate-Client-Region
	// header overrides the API key's client region (set it only behind a
	// proxy that owns that header). Default false.
	TrustClientRegionHeader bool `yaml:"trust_client_region_header"`

	// Capabilities holds per-capability settings keyed by capability name
	// (e.g. "text-to-image"). Missing entries take the defaults of DefaultConfig.
	Capabilities map[string]CapabilityConfig `yaml:"capabilities"`
	// Orchestrators the router may send work to. In the binary's config
	// they are the one top-level `orchestrators:` list that every
	// component reads, never listed here.
	Orchestrators []OrchestratorConfig `yaml:"-"`
	// APIKeys accepted in "Authorization: Bearer <key>".
	APIKeys []APIKeyConfig `yaml:"api_keys"`
}

// RetryBudgetConfig is a sliding-window retry budget: a retry is allowed if
// retries in the last Window, this one included, stay ≤ Ratio × requests in
// the last Window + MinPerSecond × Window seconds.
type RetryBudgetConfig struct {
	// Ratio of retries to requests. Default 0.2.
	Ratio float64 `yaml:"ratio"`
	// MinPerSecond retries are always allowed, so a quiet router can still retry. Default 1.
	MinPerSecond float64 `yaml:"min_per_second"`
	// Window the counts are kept for (in 10 slots). Default 10s.
	Window time.Duration `yaml:"window"`
}

// SelectionConfig tunes the weighted draw (see Choose for the formula).
type SelectionConfig struct {
	// Exploration ε mixes a uniform share into the policy's shares:
	// base = (1−ε)·share + ε/n. Default 0.05.
	Exploration float64 `yaml:"exploration"`
	// LatencyExponent β: the latency factor is (best/own)^β. 0 ignores latency. Default 1.
	LatencyExponent float64 `yaml:"latency_exponent"`
	// InFlightScale: requests in flight that halve an orchestrator's weight
	// when it has no in-flight limit (with a limit, the limit is the scale). Default 8.
	InFlightScale float64 `yaml:"in_flight_scale"`
	// FailurePenalty multiplies the weight once per consecutive failure (up to EjectAfter). Default 0.5.
	FailurePenalty float64 `yaml:"failure_penalty"`
	// EjectAfter consecutive failures eject an orchestrator locally. Default 3.
	EjectAfter int `yaml:"eject_after"`
	// EjectBase is the first ejection's length; each further ejection without
	// a success in between doubles it. Default 10s.
	EjectBase time.Duration `yaml:"eject_base"`
	// EjectMax caps an ejection. The end of each ejection is a probe, so
	// this is also how long an orchestrator that recovered can stay
	// unused, and a dead one costs one failed attempt per EjectMax.
	// Default 30s (5m left an orchestrator that was down from the start
	// unused for minutes after it came up).
	EjectMax time.Duration `yaml:"eject_max"`
	// LatencyTau is the peak-EWMA time constant. Default 10s.
	LatencyTau time.Duration `yaml:"latency_tau"`
	// LatencyStale: an estimate this old counts half (freshness = S/(S+age));
	// stale estimates fade to neutral. Default 60s.
	LatencyStale time.Duration `yaml:"latency_stale"`
}

// CapabilityConfig holds the settings of one capability.
type CapabilityConfig struct {
	// DefaultModel is the model of a request that names none (go-livepeer's default).
	DefaultModel string `yaml:"default_model"`
	// CustomerPricePerUnit is what the customer is charged per unit, USD. 0 = free.
	CustomerPricePerUnit float64 `yaml:"customer_price_per_unit"`
	// ModelPrices overrides CustomerPricePerUnit for some models.
	ModelPrices map[string]float64 `yaml:"model_prices"`
	// DefaultHeight and DefaultWidth are the pixels assumed when the request
	// gives none (text-to-image, image-to-video) or its image cannot be
	// decoded. Defaults: 512×512; image-to-video 576×1024 (go-livepeer's).
	DefaultHeight int `yaml:"default_height"`
	DefaultWidth  int `yaml:"default_width"`
	// Frames per generated video (image-to-video). Default 25.
	Frames int `yaml:"frames"`
	// DefaultMaxTokens is the llm units when max_tokens is absent. Default 256.
	DefaultMaxTokens int `yaml:"default_max_tokens"`
	// DefaultAudioMs is the audio-to-text units when neither the request (a
	// WAV header) nor the response (chunk timestamps) tells the duration. Default 60000.
	DefaultAudioMs int64 `yaml:"default_audio_ms"`
	// AttemptTimeout overrides Config.AttemptTimeout. 0 = that.
	AttemptTimeout time.Duration `yaml:"attempt_timeout"`
	// RequestTimeout overrides Config.RequestTimeout. 0 = that.
	RequestTimeout time.Duration `yaml:"request_timeout"`
}

// OrchestratorConfig is one upstream: the fleet vocabulary's
// orchestrator (event.Orchestrator), listed once in the binary's config
// for every component. The router requires its URL.
type OrchestratorConfig = event.Orchestrator

// ClassPrice is a class an orchestrator serves and its price per unit.
type ClassPrice = event.ClassPrice

// APIKeyConfig is one accepted API key: event.APIKey, the one definition
// of a key with its scope, max price, networks, limits and budgets. The
// key itself is never configured, only its SHA-256. The router checks the
// scope (capabilities, models), revocation and max price; the Gate
// (package gateway) the networks, limits and budgets.
type APIKeyConfig = event.APIKey

// DefaultConfig returns the documented defaults, with every capability
// entry filled in and no orchestrators or keys.
func DefaultConfig() Config {
	return Config{
		GatewayID:           "loopgate",
		MaxBodyBytes:        32 << 20,
		BodyMemoryPerKey:    96 << 20,
		BodyMemory:          512 << 20,
		Server:              DefaultServerConfig(),
		AttemptTimeout:      30 * time.Second,
		DerivedTimeout:      DefaultTimeoutConfig(),
		RequestTimeout:      90 * time.Second,
		DialTimeout:         5 * time.Second,
		MaxIdleConnsPerHost: 64,
		FastFailure:         250 * time.Millisecond,
		MaxAttempts:         3,
		RetryBudget:         RetryBudgetConfig{Ratio: 0.2, MinPerSecond: 1, Window: 10 * time.Second},
		Selection: SelectionConfig{
			Exploration: 0.05, LatencyExponent: 1, InFlightScale: 8, FailurePenalty: 0.5,
			EjectAfter: 3, EjectBase: 10 * time.Second, EjectMax: 30 * time.Second,
			LatencyTau: 10 * time.Second, LatencyStale: time.Minute,
		},
		Shaping:      DefaultShapingConfig(),
		Capabilities: defaultCapabilities(),
	}
}

// defaultCapabilities follows go-livepeer's gateway: its default models and
// the pixel defaults it bills with when a request leaves them out.
func defaultCapabilities() map[string]CapabilityConfig {
	return map[string]CapabilityConfig{
		event.CapTextToImage:      {DefaultModel: "stabilityai/sdxl-turbo", DefaultHeight: 512, DefaultWidth: 512},
		event.CapImageToImage:     {DefaultModel: "stabilityai/sdxl-turbo", DefaultHeight: 512, DefaultWidth: 512},
		event.CapImageToVideo:     {DefaultModel: "stabilityai/stable-video-diffusion-img2vid-xt", DefaultHeight: 576, DefaultWidth: 1024, Frames: 25, AttemptTimeout: 2 * time.Minute, RequestTimeout: 5 * time.Minute},
		event.CapUpscale:          {DefaultModel: "stabilityai/stable-diffusion-x4-upscaler", DefaultHeight: 512, DefaultWidth: 512},
		event.CapAudioToText:      {DefaultModel: "openai/whisper-large-v3", DefaultAudioMs: 60000},
		event.CapSegmentAnything2: {DefaultModel: "facebook/sam2-hiera-large", DefaultHeight: 512, DefaultWidth: 512},
		event.CapImageToText:      {DefaultModel: "Salesforce/blip-image-captioning-large", DefaultHeight: 512, DefaultWidth: 512},
		event.CapLLM:              {DefaultModel: "meta-llama/Meta-Llama-3.1-8B-Instruct", DefaultMaxTokens: 256},
		event.CapTextToSpeech:     {DefaultModel: "parler-tts/parler-tts-large-v1"},
	}
}

// normalized returns c with every capability present and zero capability
// fields replaced by their defaults.
func (c Config) normalized() Config {
	defs := defaultCapabilities()
	caps := make(map[string]CapabilityConfig, len(defs))
	for name, d := range defs {
		cc, ok := c.Capabilities[name]
		if !ok {
			caps[name] = d
			continue
		}
		if cc.DefaultModel == "" {
			cc.DefaultModel = d.DefaultModel
		}
		if cc.DefaultHeight == 0 {
			cc.DefaultHeight = d.DefaultHeight
		}
		if cc.DefaultWidth == 0 {
			cc.DefaultWidth = d.DefaultWidth
		}
		if cc.Frames == 0 {
			cc.Frames = d.Frames
		}
		if cc.DefaultMaxTokens == 0 {
			cc.DefaultMaxTokens = d.DefaultMaxTokens
		}
		if cc.DefaultAudioMs == 0 {
			cc.DefaultAudioMs = d.DefaultAudioMs
		}
		if cc.AttemptTimeout == 0 {
			cc.AttemptTimeout = d.AttemptTimeout
		}
		if cc.RequestTimeout == 0 {
			cc.RequestTimeout = d.RequestTimeout
		}
		caps[name] = cc
	}
	for name, cc := range caps {
		if cc.AttemptTimeout == 0 {
			cc.AttemptTimeout = c.AttemptTimeout
		}
		if cc.RequestTimeout == 0 {
			cc.RequestTimeout = c.RequestTimeout
		}
		caps[name] = cc
	}
	c.Capabilities = caps
	c.Shaping = c.Shaping.normalized()
	return c
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("router: "+format, args...)) }
	switch {
	case c.GatewayID == "" || len(c.GatewayID) > 256:
		bad("gateway_id %q must be 1..256 bytes", c.GatewayID)
	case len(c.GatewayRegion) > 256:
		bad("gateway_region is longer than 256 bytes")
	}
	if c.MaxBodyBytes <= 0 {
		bad("max_body_bytes %d must be positive", c.MaxBodyBytes)
	}
	if c.BodyMemoryPerKey < c.MaxBodyBytes || c.BodyMemory < c.BodyMemoryPerKey {
		bad("want max_body_bytes %d ≤ body_memory_per_key %d ≤ body_memory %d", c.MaxBodyBytes, c.BodyMemoryPerKey, c.BodyMemory)
	}
	if err := c.Server.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.AttemptTimeout <= 0 || c.RequestTimeout <= 0 || c.DialTimeout <= 0 {
		bad("attempt_timeout %v, request_timeout %v and dial_timeout %v must be positive", c.AttemptTimeout, c.RequestTimeout, c.DialTimeout)
	}
	if err := c.DerivedTimeout.Validate(); err != nil {
		bad("derived_timeout: %v", err)
	}
	if c.FastFailure < 0 {
		bad("fast_failure %v is negative", c.FastFailure)
	}
	if c.MaxIdleConnsPerHost < 0 {
		bad("max_idle_conns_per_host %d is negative", c.MaxIdleConnsPerHost)
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 16 {
		bad("max_attempts %d not in 1..16", c.MaxAttempts)
	}
	rb := c.RetryBudget
	if !finiteNonNeg(rb.Ratio) || !finiteNonNeg(rb.MinPerSecond) || rb.Window <= 0 {
		bad("retry_budget: ratio %v and min_per_second %v must be finite and non-negative, window %v positive", rb.Ratio, rb.MinPerSecond, rb.Window)
	}
	if err := c.Shaping.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("router: %w", err))
	}
	s := c.Selection
	switch {
	case !(s.Exploration >= 0 && s.Exploration <= 1):
		bad("selection.exploration %v not in [0, 1]", s.Exploration)
	case !finiteNonNeg(s.LatencyExponent) || s.LatencyExponent > 8:
		bad("selection.latency_exponent %v not in [0, 8]", s.LatencyExponent)
	case !(s.InFlightScale > 0) || math.IsInf(s.InFlightScale, 0):
		bad("selection.in_flight_scale %v must be positive", s.InFlightScale)
	case !(s.FailurePenalty > 0 && s.FailurePenalty <= 1):
		bad("selection.failure_penalty %v not in (0, 1]", s.FailurePenalty)
	case s.EjectAfter < 1:
		bad("selection.eject_after %d must be at least 1", s.EjectAfter)
	case s.EjectBase <= 0 || s.EjectMax < s.EjectBase:
		bad("selection: eject_base %v .. eject_max %v is not a range", s.EjectBase, s.EjectMax)
	case s.LatencyTau <= 0 || s.LatencyStale <= 0:
		bad("selection: latency_tau %v and latency_stale %v must be positive", s.LatencyTau, s.LatencyStale)
	}
	for name, cc := range c.Capabilities {
		if _, ok := capSpecByName(name); !ok {
			bad("capabilities: unknown capability %q (known: %v)", name, event.Capabilities())
			continue
		}
		if len(cc.DefaultModel) > maxModelLen {
			bad("capabilities.%s.default_model is longer than %d bytes", name, maxModelLen)
		}
		if cc.DefaultHeight < 0 || cc.DefaultWidth < 0 || cc.Frames < 0 || cc.DefaultMaxTokens < 0 || cc.DefaultAudioMs < 0 ||
			cc.DefaultHeight > maxDim || cc.DefaultWidth > maxDim || cc.Frames > maxImages || cc.DefaultMaxTokens > maxTokens {
			bad("capabilities.%s: unit defaults out of range", name)
		}
		if cc.AttemptTimeout < 0 || cc.RequestTimeout < 0 {
			bad("capabilities.%s: negative timeout", name)
		}
		if !finiteNonNeg(cc.CustomerPricePerUnit) {
			bad("capabilities.%s.customer_price_per_unit %v is not a finite non-negative price", name, cc.CustomerPricePerUnit)
		}
		for m, p := range cc.ModelPrices {
			if !finiteNonNeg(p) {
				bad("capabilities.%s.model_prices[%q] %v is not a finite non-negative price", name, m, p)
			}
		}
	}
	ids := make(map[string]bool, len(c.Orchestrators))
	for i, o := range c.Orchestrators {
		at := fmt.Sprintf("orchestrators[%d]", i)
		if o.ID == "" || len(o.ID) > 256 {
			bad("%s.id %q must be 1..256 bytes", at, o.ID)
		}
		if ids[o.ID] {
			bad("%s.id %q is not unique", at, o.ID)
		}
		ids[o.ID] = true
		if len(o.Region) > 256 {
			bad("%s.region is longer than 256 bytes", at)
		}
		if u, err := url.Parse(o.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("%s.url %q must be an http(s) URL with a host", at, o.URL)
		}
		if o.MaxInFlight < 0 {
			bad("%s.max_in_flight %d is negative", at, o.MaxInFlight)
		}
		for j, cl := range o.Classes {
			if _, ok := capSpecByName(cl.Capability); !ok {
				bad("%s.classes[%d]: unknown capability %q", at, j, cl.Capability)
			}
			if cl.Model == "" || len(cl.Model) > maxModelLen {
				bad("%s.classes[%d].model %q must be 1..%d bytes", at, j, cl.Model, maxModelLen)
			}
			if !finiteNonNeg(cl.PricePerUnit) {
				bad("%s.classes[%d].price_per_unit %v is not a finite non-negative price", at, j, cl.PricePerUnit)
			}
		}
	}
	keyIDs := make(map[string]bool, len(c.APIKeys))
	hashes := make(map[string]bool, len(c.APIKeys))
	for i, k := range c.APIKeys {
		at := fmt.Sprintf("api_keys[%d]", i)
		if k.ID == "" || len(k.ID) > 256 || len(k.Customer) > 256 || len(k.ClientRegion) > 256 {
			bad("%s: id must be 1..256 bytes, customer and client_region at most 256", at)
		}
		if keyIDs[k.ID] {
			bad("%s.id %q is not unique", at, k.ID)
		}
		keyIDs[k.ID] = true
		for _, c := range k.Capabilities {
			if _, ok := capSpecByName(c); !ok {
				bad("%s.capabilities: unknown capability %q", at, c)
			}
		}
		if !finiteNonNeg(k.MaxPricePerUnit) {
			bad("%s.max_price_per_unit %v is not a finite non-negative price", at, k.MaxPricePerUnit)
		}
		if b, err := hex.DecodeString(k.SHA256); err != nil || len(b) != 32 {
			bad("%s.sha256 must be 64 hex digits (the SHA-256 of the key)", at)
		} else if hashes[string(b)] {
			bad("%s.sha256 duplicates another key's", at)
		} else {
			hashes[string(b)] = true
		}
	}
	return errors.Join(errs...)
}

func finiteNonNeg(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }
