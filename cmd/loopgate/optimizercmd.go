package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/loopgate/loopgate/admin"
	"github.com/loopgate/loopgate/event"
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
		optimizer.WithLastVersion(func(ctx context.Context) (uint64, error) { return newestVersion(ctx, plog, store) }),
		optimizer.WithLastPolicy(func(ctx context.Context) (*event.Policy, error) { return newestPolicy(ctx, plog) }),
		optimizer.WithShed(store),
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
//	POST /lambda?class=CAP/MODEL&lambda=0.9  one class's own λ (admin; audited as config.lambda.class; clear=1 removes it)
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

// lambdaView is GET /lambda's answer: the global λ and the classes with a
// λ of their own.
type lambdaView struct {
	Lambda  float64                 `json:"lambda"`
	Classes []optimizer.ClassLambda `json:"classes"`
}

func (s *optimizerService) getLambda(w http.ResponseWriter, _ *http.Request) {
	admin.WriteJSON(w, http.StatusOK, lambdaView{Lambda: s.opt.Lambda(), Classes: s.opt.ClassLambdas()})
}

// classLambda is one class's λ in an audit record; nil Lambda = none.
type classLambda struct {
	Class  string   `json:"class"`
	Lambda *float64 `json:"lambda"`
}

// setLambda validates the new λ, audits the change (refused when the
// audit row cannot be written) and applies it.
//
// With class=CAPABILITY/MODEL it sets that class's own λ instead (an SLA
// tier by class), and with class=... and clear=1 it removes it.
//
// A standby optimizer refuses both (503): its rounds do not run, so the
// change would reach no router, and the active one would not know it.
// The λ of the active one survives a takeover (WithLastPolicy); a class's
// own λ set at run time does not (class_lambdas in the config do).
func (s *optimizerService) setLambda(w http.ResponseWriter, r *http.Request) {
	if !s.opt.Active() {
		w.Header().Set("Retry-After", "1")
		admin.WriteError(w, http.StatusServiceUnavailable, "this optimizer is the standby (loopgate_optimizer_leader 0): send λ changes to the active one")
		return
	}
	q := r.URL.Query()
	if class := q.Get("class"); class != "" {
		s.setClassLambda(w, r, class, q.Get("lambda"), q.Get("clear") == "1")
		return
	}
	v, err := strconv.ParseFloat(q.Get("lambda"), 64)
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

func (s *optimizerService) setClassLambda(w http.ResponseWriter, r *http.Request, class, raw string, clear bool) {
	capability, model, ok := strings.Cut(class, "/")
	if !ok || capability == "" || model == "" {
		admin.WriteError(w, http.StatusBadRequest, "want ?class=CAPABILITY/MODEL, e.g. text-to-image/stabilityai/sdxl-turbo")
		return
	}
	var v float64
	if !clear {
		var err error
		if v, err = strconv.ParseFloat(raw, 64); err != nil || math.IsNaN(v) || v < 0 || v > 1 {
			admin.WriteError(w, http.StatusBadRequest, "want ?lambda= a number in [0, 1], or clear=1")
			return
		}
	}
	old := classLambda{Class: class}
	for _, cl := range s.opt.ClassLambdas() {
		if cl.Capability == capability && cl.Model == model {
			old.Lambda = &cl.Lambda
		}
	}
	next := classLambda{Class: class}
	if !clear {
		next.Lambda = &v
	}
	if !admin.AuditOrRefuse(w, r, "config.lambda.class", old, next) {
		return
	}
	if err := s.opt.SetClassLambda(capability, model, v, clear); err != nil {
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
	run := svc.opt.Run
	if ocfg := cfg.OptimizerConfig(); ocfg.Standby {
		lease, err := optimizerLease(ocfg.Lease, b.brokers, cfg.Kafka.Replication, cfg.kafkaSecurity(), p)
		if err != nil {
			return err
		}
		run = func(ctx context.Context) error { return svc.opt.RunStandby(ctx, lease) }
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return run(gctx) })
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error {
		running := cfg.OptimizerConfig().Catalog
		return reloadOnHangup(gctx, load, func(c Config) error {
			next := c.OptimizerConfig().Catalog
			if err := next.Validate(); err != nil {
				return err
			}
			if err := auditReload(gctx, b.store, running, next); err != nil {
				return err
			}
			if err := svc.opt.SetCatalog(next); err != nil {
				return err
			}
			running = next
			return nil
		}, env.log)
	})
	return g.Wait()
}

// optimizerLease is the standby lease (optimizer.standby, optimizer.lease)
// on the event log's brokers.
func optimizerLease(lc optimizer.LeaseConfig, brokers []string, replication int, sec eventlog.Security, p process) (*eventlog.Lease, error) {
	c := eventlog.DefaultLeaseConfig()
	c.Brokers, c.Group, c.Topic, c.ReplicationFactor = brokers, lc.Group, lc.Topic, replication
	c.SessionTimeout, c.HeartbeatInterval = lc.SessionTimeout, lc.HeartbeatInterval
	c.RebalanceTimeout = lc.SessionTimeout
	c.Security = sec
	l, err := eventlog.NewLease(c, p.deps("lease"))
	if err != nil {
		return nil, fmt.Errorf("optimizer lease: %w", err)
	}
	return l, nil
}

// newestVersion is the newest policy version published anywhere: on the
// policy log, where a predecessor that died between publishing and
// recording left its last one, or in the warehouse's policies table.
func newestVersion(ctx context.Context, plog *eventlog.PolicyLog, store *warehouse.Store) (uint64, error) {
	v, err := lastPolicyVersion(ctx, store)
	if err != nil {
		return 0, err
	}
	b, err := plog.Newest(ctx)
	if err != nil {
		return 0, err
	}
	if b == nil {
		return v, nil
	}
	pol, err := event.DecodePolicy(b)
	if err != nil {
		return 0, fmt.Errorf("decode the newest policy on the log: %w", err)
	}
	return max(v, pol.Version), nil
}

// newestPolicy is the newest policy on the policy log, nil when it is empty.
func newestPolicy(ctx context.Context, plog *eventlog.PolicyLog) (*event.Policy, error) {
	b, err := plog.Newest(ctx)
	if err != nil || b == nil {
		return nil, err
	}
	pol, err := event.DecodePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("decode the newest policy on the log: %w", err)
	}
	return &pol, nil
}

// catalogSummary is what an audit row says of a catalog.
type catalogSummary struct {
	Orchestrators []string `json:"orchestrators"`
	Classes       int      `json:"classes"`
}

func summarize(c optimizer.Catalog) catalogSummary {
	s := catalogSummary{Orchestrators: []string{}, Classes: len(c.Classes)}
	for _, o := range c.Orchestrators {
		s.Orchestrators = append(s.Orchestrators, o.ID)
	}
	return s
}

// auditReload records a configuration reload (SIGHUP) in the audit table:
// actor "sighup", the catalog before and after. A reload whose row cannot
// be written is refused.
func auditReload(ctx context.Context, store *warehouse.Store, old, next optimizer.Catalog) error {
	detail, err := json.Marshal(map[string]catalogSummary{"old": summarize(old), "new": summarize(next)})
	if err != nil {
		return err
	}
	if err := store.WriteAudit(ctx, warehouse.AuditEntry{Actor: "sighup", Action: "config.reload", Detail: string(detail)}); err != nil {
		return fmt.Errorf("audit the reload (refused): %w", err)
	}
	return nil
}
