package main

// The ClickHouse disk measurement behind docs/DEPLOY.md's sizing table.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/event/eventtest"
	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/warehouse"
)

// sizingOutcome is eventtest's i-th outcome made to look like a busy gateway's traffic rather
// than a test's, so that it compresses about as real rows would: 4 gateways, 200 API keys of 50
// customers, 8 regions, 6 classes, 300 orchestrators, log-normal latencies, a 5% error mix,
// random scores and propensities, and times starting at now (so no TTL expires them).
func sizingOutcome(r *mrand.Rand, startMs int64, i int) event.Outcome {
	classes := [][3]string{
		{"text-to-image", "stabilityai/sdxl-turbo", string(event.UnitPixels)},
		{"text-to-image", "black-forest-labs/FLUX.1-schnell", string(event.UnitPixels)},
		{"image-to-video", "stabilityai/stable-video-diffusion-img2vid-xt-1-1", string(event.UnitPixels)},
		{"llm", "meta-llama/Meta-Llama-3.1-8B-Instruct", string(event.UnitTokens)},
		{"audio-to-text", "openai/whisper-large-v3", string(event.UnitMillis)},
		{"text-to-speech", "parler-tts/parler-tts-large-v1", string(event.UnitCharacters)},
	}
	regions := []string{"FRA", "LAX", "MDW", "NYC", "LON", "SAO", "SIN", "PRG"}
	o := eventtest.Outcome(7, i)
	shift := startMs + int64(i)*2 - o.StartMs // 500 outcomes a second
	o.StartMs += shift
	o.GatewayID = fmt.Sprintf("gw-%d", i%4)
	o.GatewayRegion = regions[i%4]
	o.ClientRegion = regions[r.IntN(len(regions))]
	key := r.IntN(200)
	o.APIKeyID, o.Customer = fmt.Sprintf("key-%03d", key), fmt.Sprintf("customer-%02d", key%50)
	c := classes[r.IntN(len(classes))]
	o.Capability, o.Model, o.UnitKind = c[0], c[1], event.UnitKind(c[2])
	o.Units = int64(1 + r.IntN(2_000_000))
	o.PricePerUnit = 1e-9 * (1 + r.Float64())
	o.BytesIn, o.BytesOut = int64(200+r.IntN(4000)), int64(1000+r.IntN(2_000_000))
	o.Cost = 0
	at := o.StartMs
	for k := range o.Attempts {
		a := &o.Attempts[k]
		a.Orchestrator = fmt.Sprintf("orch-%03d", r.IntN(300))
		a.OrchRegion = regions[r.IntN(len(regions))]
		a.StartMs = at
		a.LatencyMs = int64(200 * (1 + r.ExpFloat64()*2))
		a.Propensity = r.Float64()
		a.Score = event.Score{Share: r.Float64(), LatencyMs: float64(a.LatencyMs) * (0.5 + r.Float64()), InFlight: r.IntN(16), Penalty: 1 + r.Float64(), Weight: r.Float64()}
		if a.Result == event.AttemptOK {
			a.Cost = o.PricePerUnit * float64(o.Units)
			if r.IntN(20) == 0 { // a failed last attempt: the request failed
				a.Result, a.HTTPStatus, a.ErrorClass, a.Billed, a.Cost = event.AttemptError, 503, "upstream_5xx", false, 0
				o.Status, o.HTTPStatus, o.ErrorClass = event.StatusError, 503, "upstream_5xx"
			}
		}
		o.Cost += a.Cost
		at += a.LatencyMs
	}
	o.EndMs = at
	o.LatencyMs = at - o.StartMs
	o.TTFBMs = o.LatencyMs / 2
	o.Charge = o.Cost * 1.25
	return o
}

// optimize runs an OPTIMIZE statement: through the store on the embedded engine, and over the
// server's HTTP port on the server, since the native protocol's Query answers a statement with
// no result set with EOF on 18.16.
func optimize(ctx context.Context, st *warehouse.Store, backend, sql string) error {
	if backend != warehouse.BackendServer {
		_, err := st.Query(ctx, sql)
		return err
	}
	addr := os.Getenv("LOOPGATE_TEST_CLICKHOUSE_HTTP")
	if addr == "" {
		return errors.New("LOOPGATE_TEST_CLICKHOUSE_HTTP is not set (deploy/local/services.sh env sets it)")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/", strings.NewReader(sql))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	defer resp.Body.Close()
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", sql, resp.Status, body)
	}
	return nil
}

// BenchmarkClickHouseDisk writes 1,000,000 outcomes (1.6 attempts each) with the warehouse's own
// writer, in ingest's 10,000-outcome batches, into a fresh database on the ClickHouse server and
// on the embedded engine, merges every table (OPTIMIZE ... FINAL, the state background merges
// reach) and reads bytes_on_disk from system.parts: the bytes per attempt, all tables together,
// that docs/DEPLOY.md turns into disk per billion attempts. Run it with
//
//	go test -run '^$' -bench ClickHouseDisk -benchtime 1x ./cmd/loopgate
func BenchmarkClickHouseDisk(b *testing.B) {
	const outcomes, batch = 1_000_000, 10_000
	for _, backend := range []string{warehouse.BackendServer, warehouse.BackendEmbedded} {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			cfg := warehouse.DefaultConfig()
			cfg.Backend = backend
			if backend == warehouse.BackendServer {
				cfg.Addr = testenv.ClickHouse(b)
			} else {
				cfg.LibPath, cfg.DataDir = testenv.ChdbLib(b), b.TempDir()
			}
			var id [6]byte
			rand.Read(id[:])
			cfg.Database = "loopgate_sizing_" + hex.EncodeToString(id[:])
			st, err := warehouse.Open(ctx, cfg, deps.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			defer st.Query(ctx, "DROP DATABASE IF EXISTS "+cfg.Database)
			for b.Loop() {
				r := mrand.New(mrand.NewPCG(11, 13))
				start := time.Now().Add(-time.Hour).UnixMilli()
				attempts := 0
				for from := 0; from < outcomes; from += batch {
					outs := make([]event.Outcome, 0, batch)
					for i := from; i < from+batch; i++ {
						outs = append(outs, sizingOutcome(r, start, i))
						attempts += len(outs[len(outs)-1].Attempts)
					}
					if err := st.WriteOutcomes(ctx, fmt.Sprintf("sizing-%d", from), outs); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				tables, err := st.Query(ctx, "SELECT name FROM system.tables WHERE database = '"+cfg.Database+"' AND engine LIKE '%MergeTree'")
				if err != nil {
					b.Fatal(err)
				}
				for _, t := range tables.Values {
					if err := optimize(ctx, st, backend, fmt.Sprintf("OPTIMIZE TABLE %s.%s FINAL", cfg.Database, t[0])); err != nil {
						b.Fatal(err)
					}
				}
				parts, err := st.Query(ctx, "SELECT table, toString(sum(rows)), toString(sum(bytes_on_disk)), toString(sum(data_uncompressed_bytes)) FROM system.parts WHERE database = '"+cfg.Database+"' AND active GROUP BY table ORDER BY table")
				if err != nil {
					b.Fatal(err)
				}
				var total float64
				var lines []string
				for _, p := range parts.Values {
					var rows, disk, raw float64
					fmt.Sscan(fmt.Sprint(p[1]), &rows)
					fmt.Sscan(fmt.Sprint(p[2]), &disk)
					fmt.Sscan(fmt.Sprint(p[3]), &raw)
					total += disk
					lines = append(lines, fmt.Sprintf("%-14s %10.0f rows %12.0f bytes on disk %8.1f B/attempt  (uncompressed %.1f×)", p[0], rows, disk, disk/float64(attempts), raw/disk))
				}
				b.Logf("%s, %d outcomes, %d attempts:\n%s", backend, outcomes, attempts, strings.Join(lines, "\n"))
				b.ReportMetric(total/float64(attempts), "disk-B/attempt")
				b.StartTimer()
			}
		})
	}
}
