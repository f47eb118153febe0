package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/optimizer"
	"github.com/loopgate/loopgate/warehouse"
)

// optimizerService is an optimizer with the policy writer it publishes to.
type optimizerService struct {
	opt *optimizer.Optimizer
	w   *eventlog.Writer
}

func newOptimizerService(ctx context.Context, cfg Config, ocfg optimizer.Config, brokers []string, store *warehouse.Store, log *slog.Logger, reg prometheus.Registerer, now func() time.Time) (*optimizerService, error) {
	wcfg := eventlog.DefaultWriterConfig()
	wcfg.Brokers, wcfg.Topic = brokers, cfg.Kafka.PolicyTopic
	w, err := eventlog.NewWriter(wcfg, deps.Deps{Logger: log.With("component", "policy-writer"), Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("policy writer: %w", err)
	}
	opt, err := optimizer.New(ocfg, store, policySink{w: w, store: store}, deps.Deps{Logger: log.With("component", "optimizer"), Registerer: reg, Clock: now},
		optimizer.WithLastVersion(func(ctx context.Context) (uint64, error) { return lastPolicyVersion(ctx, store) }))
	if err != nil {
		w.Close()
		return nil, err
	}
	return &optimizerService{opt: opt, w: w}, nil
}

func (s *optimizerService) Close() error { return s.w.Close() }

// lambdaHandler is the operator's knob: GET shows λ, POST ?lambda=0.3 sets it.
func lambdaHandler(opt *optimizer.Optimizer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			v, err := strconv.ParseFloat(r.URL.Query().Get("lambda"), 64)
			if err != nil || math.IsNaN(v) {
				http.Error(w, "want ?lambda= a number in [0, 1]", http.StatusBadRequest)
				return
			}
			if err := opt.SetLambda(v); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		fmt.Fprintf(w, "{\"lambda\": %g}\n", opt.Lambda())
	})
}

func runOptimizer(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("optimizer", flag.ContinueOnError)
	load := commonFlags(fs)
	if err := parseFlags(fs, env, args, "optimizer [flags]\n\nEvery period, read windowed statistics from ClickHouse, compute traffic shares that trade\ncost against SLO misses (the λ knob: POST /lambda?lambda=0.3 on the admin port), and publish\na versioned policy to Kafka and the policies table. Also serves go-livepeer's advisor\nendpoints (/orchestrators/webhook, /orchestrators/perf-stats) on the admin port."); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	b, err := connect(ctx, cfg, env.log)
	if err != nil {
		return err
	}
	defer b.close()
	ocfg := cfg.OptimizerConfig()
	svc, err := newOptimizerService(ctx, cfg, ocfg, b.brokers, b.store, env.log, b.reg, time.Now)
	if err != nil {
		return err
	}
	defer svc.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.opt.Run(gctx) })
	g.Go(func() error {
		extra := map[string]http.Handler{"/orchestrators/": svc.opt.AdvisorHandler(), "/lambda": lambdaHandler(svc.opt)}
		return serveAdmin(gctx, cfg.Admin.Addr, b.reg, b.store.Ping, extra, env.log)
	})
	return g.Wait()
}
