package main

import (
	"context"
	"flag"
	"math"
	"net/http"
	"strconv"

	"golang.org/x/sync/errgroup"

	"github.com/loopgate/loopgate/admin"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/optimizer"
	"github.com/loopgate/loopgate/warehouse"
)

// optimizerService is an optimizer publishing to the policy log and the
// warehouse.
type optimizerService struct {
	opt *optimizer.Optimizer
	// publicAdvisor serves the advisor endpoints without a token
	// (livepeer.public_advisor): stock go-livepeer sends none.
	publicAdvisor bool
}

func newOptimizerService(ocfg optimizer.Config, priors optimizer.PriorsConfig, plog *eventlog.PolicyLog, store *warehouse.Store, p process) (*optimizerService, error) {
	opt, err := optimizer.New(ocfg, store, policySink{log: plog, store: store, logger: p.log.With("component", "policy-sink")}, p.deps("optimizer"),
		optimizer.WithLastVersion(func(ctx context.Context) (uint64, error) { return lastPolicyVersion(ctx, store) }),
		optimizer.WithPriors(store, priors)) // go-livepeer's own events, for orchestrators without outcomes
	if err != nil {
		return nil, err
	}
	return &optimizerService{opt: opt}, nil
}

// mount puts the optimizer's endpoints on the admin server:
//
//	GET  /lambda                  the knob (read)
//	POST /lambda?lambda=0.3       set it (admin; audited as config.lambda)
//	GET  /orchestrators/webhook   go-livepeer's -orchWebhookUrl (read)
//	GET  /orchestrators/perf-stats go-livepeer's -orchPerfStatsUrl (read)
//	GET  /frontier                the latest cost/latency frontier (read)
//	GET  /frontier/preview?lambda=0.2  what that λ would do; changes nothing (read)
func (s *optimizerService) mount(srv *admin.Server) {
	srv.Handle("GET /lambda", admin.RoleRead, http.HandlerFunc(s.getLambda))
	srv.Handle("POST /lambda", admin.RoleAdmin, http.HandlerFunc(s.setLambda))
	advisor := admin.RoleRead
	if s.publicAdvisor {
		advisor = admin.RolePublic
	}
	srv.Handle("GET /orchestrators/", advisor, s.opt.AdvisorHandler())
	srv.Handle("GET /frontier", admin.RoleRead, s.opt.FrontierHandler())
	srv.Handle("GET /frontier/preview", admin.RoleRead, s.opt.PreviewHandler())
}

func (s *optimizerService) getLambda(w http.ResponseWriter, _ *http.Request) {
	admin.WriteJSON(w, http.StatusOK, map[string]float64{"lambda": s.opt.Lambda()})
}

// setLambda validates the new λ, audits the change (refused when the
// audit row cannot be written) and applies it.
func (s *optimizerService) setLambda(w http.ResponseWriter, r *http.Request) {
	v, err := strconv.ParseFloat(r.URL.Query().Get("lambda"), 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > 1 {
		admin.WriteError(w, http.StatusBadRequest, "want ?lambda= a number in [0, 1]")
		return
	}
	if !admin.AuditOrRefuse(w, r, "config.lambda", s.opt.Lambda(), v) {
		return
	}
	if err := s.opt.SetLambda(v); err != nil {
		admin.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.getLambda(w, r)
}

func runOptimizer(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("optimizer", flag.ContinueOnError)
	load := commonFlags(fs)
	if err := parseFlags(fs, env, args, "optimizer [flags]\n\nEvery period, read windowed statistics from ClickHouse, compute traffic shares that trade\ncost against SLO misses (the λ knob: POST /lambda?lambda=0.3 on the admin port, with an\nadmin token), and publish a versioned policy to the policy log and the policies table. Also\nserves go-livepeer's advisor endpoints (/orchestrators/webhook, /orchestrators/perf-stats)\non the admin port, with a read token."); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	p := newProcess(env.log)
	b, err := connect(ctx, cfg, p)
	if err != nil {
		return err
	}
	defer b.close()
	plog, err := policyLog(cfg, b.brokers, p)
	if err != nil {
		return err
	}
	defer plog.Close()
	svc, err := newOptimizerService(cfg.OptimizerConfig(), cfg.Livepeer.Priors, plog, b.store, p)
	if err != nil {
		return err
	}
	srv, err := newAdmin(cfg, p, b.store.Ping, b.store)
	if err != nil {
		return err
	}
	svc.publicAdvisor = cfg.Livepeer.PublicAdvisor
	svc.mount(srv)
	if err := mountConsole(srv, p, cfg.OptimizerConfig()); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.opt.Run(gctx) })
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error {
		return reloadOnHangup(gctx, load, func(c Config) error { return svc.opt.SetCatalog(c.OptimizerConfig().Catalog) }, env.log)
	})
	return g.Wait()
}
