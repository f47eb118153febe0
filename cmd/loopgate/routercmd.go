package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/errgroup"

	"github.com/loopgate/loopgate/admin"
	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/gateway"
	"github.com/loopgate/loopgate/openapi"
	"github.com/loopgate/loopgate/router"
	"github.com/loopgate/loopgate/warehouse"
)

// routerService is a router with its outcome publisher and the policy log
// it follows.
type routerService struct {
	r    *router.Router
	gw   *gateway.Gateway
	keys *gateway.Keys // nil: no key API
	pub  *eventlog.Publisher
	plog *eventlog.PolicyLog
	// journal keeps the requests in flight (durable_outcomes); unfinished
	// are those a crash of the previous run left, published as interrupted
	// before serving. nil without durable outcomes.
	journal    *eventlog.Journal
	unfinished []eventlog.Unfinished
	// policyWait bounds how long run waits for the current policy before
	// it serves.
	policyWait time.Duration
}

func newRouterService(cfg Config, rcfg router.Config, brokers []string, plog *eventlog.PolicyLog, p process, gwOpts ...gateway.Option) (*routerService, error) {
	pcfg := eventlog.DefaultPublisherConfig()
	pcfg.Brokers, pcfg.Topic, pcfg.Security = brokers, cfg.Kafka.OutcomesTopic, cfg.kafkaSecurity()
	pcfg.SpillDir = filepath.Join(cfg.DataDir, "spill", rcfg.GatewayID)
	pcfg.Durable = cfg.DurableOutcomes
	pub, err := eventlog.NewPublisher(pcfg, p.deps("publisher"))
	if err != nil {
		return nil, fmt.Errorf("outcome publisher: %w", err)
	}
	svc := &routerService{pub: pub, plog: plog, policyWait: cfg.PolicyWait}
	if svc.gw, err = gateway.New(cfg.Gateway, rcfg.GatewayID, p.deps("gateway"), gwOpts...); err != nil {
		return nil, err
	}
	// The API's own description, at GET /openapi.json on the public port.
	opts := []router.Option{router.WithOpenAPI(openapi.JSON()), router.WithGate(svc.gw)}
	if cfg.DurableOutcomes {
		jcfg := eventlog.DefaultJournalConfig()
		jcfg.Dir = filepath.Join(cfg.DataDir, "journal", rcfg.GatewayID)
		if svc.journal, svc.unfinished, err = eventlog.OpenJournal(jcfg, p.deps("journal")); err != nil {
			return nil, fmt.Errorf("request journal: %w", err)
		}
		opts = append(opts, router.WithJournal(svc.journal))
	}
	gin.SetMode(gin.ReleaseMode)
	d := p.deps("router")
	d.Rand = deps.SeededRand()
	if svc.r, err = router.New(rcfg, pub, d, opts...); err != nil {
		if svc.journal != nil {
			svc.journal.Close()
		}
		return nil, err
	}
	return svc, nil
}

// recoverInterrupted publishes the outcomes of the requests the previous run left in
// flight, as interrupted, before this run serves.
func (s *routerService) recoverInterrupted(log *slog.Logger) {
	n := 0
	for _, u := range s.unfinished {
		if err := s.r.PublishInterrupted(u.ID, u.Begin, u.Attempts); err != nil {
			log.Error("interrupted request not recovered", "id", u.ID, "err", err)
			continue
		}
		n++
	}
	if n > 0 {
		log.Warn("published the outcomes of requests a crash interrupted", "interrupted", n)
	}
	s.unfinished = nil
}

// run follows the policy log and, once the newest policy is applied (or
// policyWait passed), serves the router on listen until ctx ends; then it
// stops taking requests, lets them finish (each publishes its outcome) and
// flushes the publisher.
func (s *routerService) run(ctx context.Context, listen string, log *slog.Logger) error {
	pubCtx, stopPub := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPub()
	pubDone := make(chan error, 1)
	go func() { pubDone <- s.pub.Run(pubCtx) }()
	s.recoverInterrupted(log)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.r.FollowPolicies(gctx, s.plog) })
	g.Go(func() error { return s.gw.Run(gctx) })
	if s.keys != nil {
		g.Go(func() error { return s.keys.Run(gctx) })
	}
	g.Go(func() error {
		select {
		case <-s.plog.CaughtUp():
		case <-time.After(s.policyWait):
			log.Warn("no routing policy yet; serving with equal shares until one arrives", "waited", s.policyWait)
		case <-gctx.Done():
			return nil
		}
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", listen, err)
		}
		// Serve bounds headers, bodies, idle connections and their number
		// (router.ServerConfig) and answers every error as JSON.
		return s.r.Serve(gctx, ln)
	})
	err := g.Wait()
	// Every handler has returned, so every outcome is in the publisher.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if cerr := s.pub.Close(cctx); cerr != nil {
		log.Error("outcome publisher close", "err", cerr)
	}
	stopPub()
	<-pubDone
	if s.journal != nil {
		if jerr := s.journal.Close(); jerr != nil {
			log.Error("request journal close", "err", jerr)
		}
	}
	return err
}

func runRouter(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	load := commonFlags(fs)
	if err := parseFlags(fs, env, args, "router [flags]\n\nServe the Livepeer AI API (POST /text-to-image, /llm, ...) on router_addr, route each request\nby the current policy (it waits up to policy_wait for it at start), and publish one outcome per\nrequest to Kafka. SIGHUP reloads the orchestrators and API keys from --config, with the same\nflags, without a restart."); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	p := newProcess(env.log)
	brokers, stopKafka, err := kafka(ctx, cfg, false, p)
	if err != nil {
		return err
	}
	defer stopKafka()
	plog, err := policyLog(cfg, brokers, p)
	if err != nil {
		return err
	}
	defer plog.Close()
	// Budgets are shared between routers through the warehouse (server
	// backend: several processes), read every gateway.sync_interval; so
	// are the keys made through the admin API (gateway.key_api).
	var store *warehouse.Store
	if cfg.needsWarehouse() {
		if store, err = openWarehouse(ctx, cfg, p.deps("warehouse")); err != nil {
			return err
		}
		defer store.Close()
	}
	svc, err := newRouterService(cfg, cfg.RouterConfig(), brokers, plog, p, gatewayOptions(store, cfg.Router.GatewayID)...)
	if err != nil {
		return err
	}
	defer svc.r.Close()
	if cfg.Gateway.KeyAPI {
		if err := svc.enableKeys(ctx, cfg, store, p); err != nil {
			return err
		}
	}
	srv, err := newAdmin(cfg, p, svc.r.Ready, store)
	if err != nil {
		return err
	}
	svc.mount(srv)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.run(gctx, cfg.RouterAddr, p.log.With("component", "router")) })
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error {
		return reloadOnHangup(gctx, load, svc.reload, env.log)
	})
	return g.Wait()
}

// reload applies a reloaded configuration to the router and its gateway:
// both or, when either refuses it, neither (the gateway's is checked first).
func (s *routerService) reload(c Config) error {
	if err := c.validateGateway(); err != nil {
		return err
	}
	if err := s.r.Reload(c.RouterConfig()); err != nil {
		return err
	}
	return s.gw.SetConfig(c.Gateway)
}

// mount puts the router's read-only endpoints (/policy, /orchestrators)
// on the admin server.
func (s *routerService) mount(srv *admin.Server) {
	h := s.r.AdminHandler()
	srv.Handle("GET /policy", admin.RoleRead, h)
	srv.Handle("GET /orchestrators", admin.RoleRead, h)
	s.mountKeys(srv)
}

// reloadOnHangup reloads the configuration on SIGHUP — the file named at
// start, the environment and the same flag overrides, through load — and
// hands it to apply, which logs what it changed. A configuration that does
// not load or that apply refuses is logged and the running one kept.
func reloadOnHangup(ctx context.Context, load func() (Config, error), apply func(Config) error, log *slog.Logger) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return reloadOn(ctx, hup, load, apply, log)
}

// reloadOn is reloadOnHangup's loop, reloading on every value of hup.
func reloadOn(ctx context.Context, hup <-chan os.Signal, load func() (Config, error), apply func(Config) error, log *slog.Logger) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
		}
		cfg, err := load()
		if err == nil {
			err = apply(cfg)
		}
		if err != nil {
			log.Error("config reload refused; keeping the running config", "err", err)
		}
	}
}
