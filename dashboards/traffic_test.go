package dashboards

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/warehouse"
)

// The simulated run every query test reads: 20 minutes of traffic from
// three customers over three classes, routed by a policy published every
// 10 s across five orchestrators. At faultAt, lax-1 starts failing most
// attempts; 30 s later the policies cut its share and then eject it. Enough
// variety that every panel and cookbook query has rows to return.
var (
	runStart = time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	runEnd   = runStart.Add(20 * time.Minute)
	faultAt  = runStart.Add(8 * time.Minute)
)

type simClass struct {
	capability, model string
	kind              event.UnitKind
	units             int64
	price             float64 // USD per unit
	latencyMs         float64 // median on a healthy orchestrator
}

var (
	simClasses = []simClass{
		{"text-to-image", "stabilityai/sdxl-turbo", event.UnitPixels, 1 << 20, 2e-9, 900},
		{"llm", "meta-llama/Meta-Llama-3.1-8B-Instruct", event.UnitTokens, 512, 4e-6, 1600},
		{"audio-to-text", "openai/whisper-large-v3", event.UnitMillis, 30000, 5e-8, 700},
	}
	simOrchs   = []string{"fra-1", "fra-2", "lax-1", "mdw-1", "sin-1"}
	simRegions = map[string]string{"fra-1": "FRA", "fra-2": "FRA", "lax-1": "LAX", "mdw-1": "MDW", "sin-1": "SIN"}
	simSpeed   = map[string]float64{"fra-1": 1, "fra-2": 1.3, "lax-1": 0.8, "mdw-1": 1.6, "sin-1": 2.1}
	simKeys    = []struct{ customer, key string }{{"acme", "key-acme-1"}, {"acme", "key-acme-2"}, {"globex", "key-globex-1"}, {"initech", "key-initech-1"}}
)

// sharesAt is the policy's share of each orchestrator at t (the same for
// every class): even, then lax-1 cut 30 s after the fault and ejected 40 s
// after it.
func sharesAt(t time.Time) (map[string]float64, []event.Ejection) {
	s := map[string]float64{"fra-1": 0.25, "fra-2": 0.2, "lax-1": 0.25, "mdw-1": 0.2, "sin-1": 0.1}
	var ej []event.Ejection
	switch {
	case t.After(faultAt.Add(40 * time.Second)):
		s["lax-1"] = 0
		s["fra-1"], s["fra-2"] = 0.4, 0.3
		ej = []event.Ejection{{Orchestrator: "lax-1", Reason: "success 0.21 below 0.5 over 30 s", UntilMs: t.Add(5 * time.Minute).UnixMilli()}}
	case t.After(faultAt.Add(30 * time.Second)):
		s["lax-1"] = 0.05
		s["fra-1"], s["fra-2"] = 0.35, 0.3
	}
	return s, ej
}

// simulate returns the outcomes and policies of the run.
func simulate() ([]event.Outcome, []event.Policy) {
	r := rand.New(rand.NewPCG(10, 10))
	var pols []event.Policy
	for v, t := uint64(1), runStart; t.Before(runEnd); v, t = v+1, t.Add(10*time.Second) {
		shares, ej := sharesAt(t)
		p := event.Policy{Schema: event.SchemaVersion, Version: v, CreatedMs: t.UnixMilli(), Lambda: 0.5, WindowS: 60, Producer: "optimizer-test", Ejections: ej}
		if t.After(runStart.Add(15 * time.Minute)) {
			p.Lambda = 0.7
		}
		for _, c := range simClasses {
			cp := event.ClassPolicy{Capability: c.capability, Model: c.model}
			for _, o := range simOrchs {
				if shares[o] > 0 {
					reason := "allocation"
					if o == "lax-1" && shares[o] < 0.25 {
						reason = "success fell to 0.21"
					}
					cp.Shares = append(cp.Shares, event.Share{Orchestrator: o, Share: shares[o], Reason: reason})
				}
			}
			p.Classes = append(p.Classes, cp)
		}
		pols = append(pols, p)
	}
	var outs []event.Outcome
	for i, t := 0, runStart; t.Before(runEnd); i, t = i+1, t.Add(200*time.Millisecond) {
		outs = append(outs, simRequest(r, i, t, pols))
	}
	return outs, pols
}

func simRequest(r *rand.Rand, i int, t time.Time, pols []event.Policy) event.Outcome {
	c := simClasses[i%len(simClasses)]
	k := simKeys[r.IntN(len(simKeys))]
	pv := uint64(t.Sub(runStart)/(10*time.Second)) + 1
	o := event.Outcome{
		ID: fmt.Sprintf("%013d-%06d", t.UnixMilli(), i), Schema: event.SchemaVersion,
		GatewayID: "gw-test", GatewayRegion: "FRA", ClientRegion: []string{"FRA", "LAX", "SIN"}[i%3],
		APIKeyID: k.key, Customer: k.customer, Capability: c.capability, Model: c.model,
		Units: c.units, UnitKind: c.kind, StartMs: t.UnixMilli(), PolicyVersion: pv,
		BytesIn: 400, PricePerUnit: c.price,
	}
	if i%97 == 0 { // admission refused before any attempt
		o.Status, o.HTTPStatus, o.ErrorClass, o.EndMs = event.StatusRejected, 503, "no_orchestrator", o.StartMs+1
		o.LatencyMs = 1
		return o
	}
	shares, _ := sharesAt(t)
	at := o.StartMs
	tried := map[string]bool{}
	for n := 0; n < 3; n++ {
		orch := pick(r, shares, tried)
		tried[orch] = true
		lat := int64(c.latencyMs * simSpeed[orch] * math.Exp(0.4*r.NormFloat64()))
		a := event.Attempt{
			Orchestrator: orch, OrchRegion: simRegions[orch], StartMs: at, LatencyMs: lat,
			Result: event.AttemptOK, HTTPStatus: 200, Retry: n > 0, Billed: true,
			Cost: c.price * float64(c.units) * (0.8 + 0.1*simSpeed[orch]), Propensity: shares[orch],
			Score: event.Score{Share: shares[orch], LatencyMs: float64(lat), InFlight: r.IntN(6), Penalty: 1, Weight: shares[orch]},
		}
		failP := 0.02
		if orch == "lax-1" && !t.Before(faultAt) {
			failP = 0.8
		}
		if r.Float64() < failP {
			a.Result, a.HTTPStatus, a.ErrorClass, a.Billed, a.Cost = event.AttemptError, 500, "upstream_5xx", false, 0
			a.LatencyMs = lat / 4
		}
		o.Attempts = append(o.Attempts, a)
		o.Cost += a.Cost
		at += a.LatencyMs
		if a.Result == event.AttemptOK {
			o.Status, o.HTTPStatus = event.StatusOK, 200
			o.Charge = a.Cost * 1.25
			o.BytesOut = 90000
			break
		}
	}
	if o.Status == "" {
		o.Status, o.HTTPStatus, o.ErrorClass = event.StatusError, 502, "upstream_5xx"
	}
	o.EndMs = at
	o.LatencyMs = at - o.StartMs
	o.TTFBMs = o.LatencyMs
	return o
}

// pick draws an orchestrator by share among those not tried yet.
func pick(r *rand.Rand, shares map[string]float64, tried map[string]bool) string {
	var sum float64
	for _, o := range simOrchs {
		if !tried[o] {
			sum += shares[o]
		}
	}
	x := r.Float64() * sum
	for _, o := range simOrchs {
		if tried[o] || shares[o] == 0 {
			continue
		}
		if x -= shares[o]; x <= 0 {
			return o
		}
	}
	for _, o := range simOrchs {
		if !tried[o] && shares[o] > 0 {
			return o
		}
	}
	return simOrchs[0]
}

// The embedded engine allows one Store per process: every test shares it.
var (
	storeOnce sync.Once
	store     *warehouse.Store
	storeErr  error
	storeDir  string
)

// simulatedStore returns the embedded warehouse (database loopgate) holding
// the simulated run; it skips, or fails under CI, without libchdb.
func simulatedStore(t *testing.T) *warehouse.Store {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the embedded engine (libchdb); skipped in -short")
	}
	lib := testenv.ChdbLib(t)
	storeOnce.Do(func() {
		storeDir, storeErr = os.MkdirTemp("", "loopgate-dashboards-chdb-")
		if storeErr != nil {
			return
		}
		cfg := warehouse.DefaultConfig()
		cfg.Backend, cfg.LibPath, cfg.DataDir = warehouse.BackendEmbedded, lib, storeDir
		cfg.RawRetentionDays, cfg.RollupRetentionDays, cfg.FineRetentionDays = 3650, 3650, 3650
		ctx := context.Background()
		store, storeErr = warehouse.Open(ctx, cfg, deps.Deps{})
		if storeErr != nil {
			return
		}
		outs, pols := simulate()
		for i := 0; i < len(outs); i += 2000 {
			if storeErr = store.WriteOutcomes(ctx, fmt.Sprintf("sim-%d", i), outs[i:min(i+2000, len(outs))]); storeErr != nil {
				return
			}
		}
		for _, p := range pols {
			var enc []byte
			if enc, storeErr = event.EncodePolicy(p); storeErr != nil {
				return
			}
			if storeErr = store.WritePolicy(ctx, p, enc); storeErr != nil {
				return
			}
		}
		storeErr = fillLivepeer(ctx, store)
	})
	if storeErr != nil {
		t.Fatalf("fill the embedded warehouse: %v", storeErr)
	}
	return store
}
