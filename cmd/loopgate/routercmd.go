package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/loopgate/loopgate/deps"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/router"
)

// routerService is a router with its outcome publisher.
type routerService struct {
	r   *router.Router
	pub *eventlog.Publisher
}

func newRouterService(cfg Config, rcfg router.Config, brokers []string, log *slog.Logger, reg prometheus.Registerer) (*routerService, error) {
	pcfg := eventlog.DefaultPublisherConfig()
	pcfg.Brokers, pcfg.Topic = brokers, cfg.Kafka.OutcomesTopic
	pcfg.SpillDir = filepath.Join(cfg.DataDir, "spill", rcfg.GatewayID)
	pub, err := eventlog.NewPublisher(pcfg, deps.Deps{Logger: log.With("component", "publisher"), Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("outcome publisher: %w", err)
	}
	gin.SetMode(gin.ReleaseMode)
	r, err := router.New(rcfg, pub, deps.Deps{Logger: log.With("component", "router"), Registerer: reg, Rand: deps.SeededRand()})
	if err != nil {
		return nil, err
	}
	return &routerService{r: r, pub: pub}, nil
}

// run serves the router, its publisher and its policy subscription until
// ctx ends; then it stops taking requests, lets them finish (each publishes
// its outcome) and flushes the publisher.
func (s *routerService) run(ctx context.Context, cfg Config, brokers []string, listen string, log *slog.Logger) error {
	pubCtx, stopPub := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPub()
	pubDone := make(chan error, 1)
	go func() { pubDone <- s.pub.Run(pubCtx) }()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveHTTP(gctx, listen, s.r.Handler(), log.With("component", "router")) })
	g.Go(func() error {
		return s.r.FollowPolicies(gctx, kafkaPolicies{brokers: brokers, topic: cfg.Kafka.PolicyTopic, log: log.With("component", "policy")})
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
	return err
}

func runRouter(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	load := commonFlags(fs)
	if err := parseFlags(fs, env, args, "router [flags]\n\nServe the Livepeer AI API (POST /text-to-image, /llm, ...) on router_addr, route each request\nby the current policy, and publish one outcome per request to Kafka. SIGHUP reloads the\norchestrators and API keys from --config without a restart."); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	reg := newRegistry()
	brokers, stopKafka, err := kafka(ctx, cfg, false, env.log)
	if err != nil {
		return err
	}
	defer stopKafka()
	svc, err := newRouterService(cfg, cfg.RouterConfig(), brokers, env.log, reg)
	if err != nil {
		return err
	}
	defer svc.r.Close()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.run(gctx, cfg, brokers, cfg.RouterAddr, env.log) })
	g.Go(func() error {
		return serveHTTP(gctx, cfg.Admin.Addr, svc.r.AdminHandler(router.AdminOptions{Gatherer: reg}), env.log.With("component", "admin"))
	})
	g.Go(func() error { return reloadOnHangup(gctx, svc.r, env.log) })
	return g.Wait()
}

// reloadOnHangup re-reads the config file on SIGHUP and applies its router
// section; a bad file is logged and the running config kept.
func reloadOnHangup(ctx context.Context, r *router.Router, log *slog.Logger) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
		}
		path := configPathFromArgs(os.Args)
		cfg, err := loadConfig(path, os.Getenv)
		if err == nil {
			err = r.Reload(cfg.RouterConfig())
		}
		if err != nil {
			log.Error("reload refused; keeping the running config", "config", path, "err", err)
			continue
		}
		log.Info("router config reloaded", "config", path, "orchestrators", len(cfg.Orchestrators))
	}
}

// configPathFromArgs finds --config in the process arguments.
func configPathFromArgs(args []string) string {
	for i, a := range args {
		switch {
		case (a == "--config" || a == "-config") && i+1 < len(args):
			return args[i+1]
		case len(a) > 9 && a[:9] == "--config=":
			return a[9:]
		case len(a) > 8 && a[:8] == "-config=":
			return a[8:]
		}
	}
	return ""
}
