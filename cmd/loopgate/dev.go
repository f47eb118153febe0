package main

import (
	"context"
	crand "crypto/rand"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/loopgate/loopgate/admin"
	"github.com/loopgate/loopgate/optimizer"
	"github.com/loopgate/loopgate/router"
	"github.com/loopgate/loopgate/sim/closedloop"
	"github.com/loopgate/loopgate/sim/fleet"
	"github.com/loopgate/loopgate/sim/load"
	"github.com/loopgate/loopgate/sim/scenario"
	"github.com/loopgate/loopgate/warehouse"
)

func runDev(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	load := commonFlags(fs)
	printCfg := fs.Bool("print-config", false, "print every setting with its value and exit")
	scn := fs.String("scenario", "steady-heterogeneous", "scenario `file`, or the name of a built-in scenario, for the simulated fleet and load")
	runFor := fs.Duration("for", 0, "stop after this long (0: at Ctrl-C)")
	speed := fs.Float64("speed", 1, "play the scenario this many times faster than the wall clock")
	lpEvents := fs.Bool("livepeer-events", false, "also publish simulated stock go-livepeer gateway events and run the go-livepeer adapter on them (docs/LIVEPEER.md)")
	if err := parseFlags(fs, env, args, `dev [flags]

Run the whole loop in one process: the embedded Kafka broker and embedded ClickHouse
(state under data_dir), the router, ingest, the optimizer, a simulated fleet of orchestrators
and the load of its clients, from a scenario. Ctrl-C stops the load, lets every request finish,
flushes every outcome into ClickHouse and prints what arrived.`); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	if *printCfg {
		return printConfig(env, cfg)
	}
	sc, err := loadScenario(*scn)
	if err != nil {
		return err
	}
	if *runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *runFor)
		defer cancel()
	}
	return devLoop{cfg: cfg, env: env, speed: *speed, livepeerEvents: *lpEvents}.run(ctx, sc)
}

type devLoop struct {
	cfg            Config
	env            *cliEnv
	speed          float64
	livepeerEvents bool
}

func (d devLoop) run(ctx context.Context, sc *scenario.Scenario) error {
	cfg, log := d.cfg, d.env.log
	started := time.Now()
	// Infrastructure outlives the traffic: it is stopped last, after the
	// final flush, whatever ctx says.
	infra := context.WithoutCancel(ctx)
	p := newProcess(log)
	token, err := devToken(&cfg)
	if err != nil {
		return err
	}

	cfg.Kafka.Brokers = nil
	brokers, stopKafka, err := kafka(infra, cfg, true, p)
	if err != nil {
		return err
	}
	defer stopKafka()
	cfg.Warehouse.Backend = warehouse.BackendEmbedded
	store, err := openWarehouse(infra, cfg, p.deps("warehouse"))
	if err != nil {
		return err
	}
	defer store.Close()

	// Ingest runs until the very end, on its own context.
	ingestCtx, stopIngest := context.WithCancel(infra)
	defer stopIngest()
	pipe, err := newIngestPipeline(cfg, brokers, store, p)
	if err != nil {
		return err
	}
	defer pipe.Close()
	ingestDone := make(chan error, 1)
	go func() { ingestDone <- pipe.Run(ingestCtx) }()

	fcfg := fleet.DefaultConfig()
	fcfg.Speed = d.speed
	fl, err := fleet.New(sc, fcfg, p.deps("fleet"))
	if err != nil {
		return err
	}
	fleetCtx, stopFleet := context.WithCancel(infra)
	defer func() { stopFleet(); fl.Wait() }()
	if err := fl.Start(fleetCtx); err != nil {
		return err
	}

	rcfg := routerConfigFor(cfg.Router, sc, fl.Orchestrators())
	rcfg.GatewayID = fmt.Sprintf("dev-%d", started.Unix())
	// One policy log for the process: the optimizer publishes, the router follows.
	plog, err := policyLog(cfg, brokers, p)
	if err != nil {
		return err
	}
	defer plog.Close()
	rsvc, err := newRouterService(cfg, rcfg, brokers, plog, p, gatewayOptions(store, rcfg.GatewayID)...)
	if err != nil {
		return err
	}
	defer rsvc.r.Close()

	ocfg := cfg.Optimizer
	ocfg.Catalog = closedloop.Catalog(sc, advertised(fl.Orchestrators()))
	osvc, err := newOptimizerService(ocfg, cfg.Livepeer.Priors, plog, store, p)
	if err != nil {
		return err
	}
	if d.livepeerEvents {
		stopLivepeer, err := startDevLivepeer(infra, cfg, brokers, store, orchRefs(ocfg.Catalog.Orchestrators), p)
		if err != nil {
			return err
		}
		defer stopLivepeer()
	}

	lcfg := load.DefaultConfig()
	lcfg.Target, lcfg.Speed, lcfg.APIKeys, lcfg.Origin = "http://"+cfg.RouterAddr, d.speed, simAPIKeys(sc), fl.Origin()
	ld := p.deps("load")
	ld.Rand = rand.New(rand.NewPCG(uint64(sc.Seed), uint64(started.UnixNano())))
	gen, err := load.New(sc, lcfg, ld)
	if err != nil {
		return err
	}

	if err := rsvc.enableKeys(infra, cfg, store, p); err != nil {
		return err
	}
	srv, err := devAdmin(cfg, ocfg, p, rsvc, osvc, store)
	if err != nil {
		return err
	}

	d.banner(cfg, rcfg, sc, token)

	// The serving side: router, optimizer, admin. Stopped when ctx ends.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rsvc.run(gctx, cfg.RouterAddr, log.With("component", "router")) })
	g.Go(func() error { return osvc.opt.Run(gctx) })
	g.Go(func() error { return srv.Run(gctx) })
	var sum load.Summary
	g.Go(func() error {
		var err error
		sum, err = gen.Run(gctx) // returns after its in-flight requests ended
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		log.Info("load finished; the loop keeps running until Ctrl-C or --for", "answered", sum.Answered())
		<-gctx.Done()
		return nil
	})
	err = g.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("stopping after an error", "err", err)
	}

	// Every request has ended and the publisher is flushed: wait until
	// ingest has stored everything this run published, then stop it.
	rows, werr := d.waitIngested(infra, store, rcfg.GatewayID, rsvc.pub.Stats().Published)
	stopIngest()
	if ierr := <-ingestDone; ierr != nil {
		log.Error("ingest stopped", "err", ierr)
	}
	d.report(sum, rows, werr)
	return err
}

// waitIngested waits (at most 30 s) until the warehouse holds want requests
// from this run's gateway, and returns the counts by status.
func (d devLoop) waitIngested(ctx context.Context, store *warehouse.Store, gateway string, want int64) (map[string]int64, error) {
	q := fmt.Sprintf("SELECT toString(status), count() FROM requests WHERE gateway_id = '%s' GROUP BY status", gateway)
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows, err := store.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		got, total := map[string]int64{}, int64(0)
		for _, r := range rows.Values {
			n := i64any(r[1])
			got[fmt.Sprint(r[0])] = n
			total += n
		}
		if total >= want || time.Now().After(deadline) {
			if total < want {
				return got, fmt.Errorf("warehouse holds %d of the %d outcomes published", total, want)
			}
			return got, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func i64any(v any) int64 {
	switch x := v.(type) {
	case uint64:
		return int64(x)
	case int64:
		return x
	}
	return 0
}

func (d devLoop) banner(cfg Config, rcfg router.Config, sc *scenario.Scenario, token string) {
	w := d.env.stdout
	auth := "the configured tokens"
	if token != "" {
		auth = fmt.Sprintf("dev admin token %s (saved in %s)", token, devTokenPath(cfg))
	}
	fmt.Fprintf(w, `
loopgate dev is running: scenario %q (%d orchestrators, %d clients) at speed %g.

  router      http://%s   (Livepeer AI API; try: curl -H 'Authorization: Bearer %s' \
                 -d '{"model_id":"%s","prompt":"a cat"}' http://%s/%s)
  admin       http://%s/metrics  /policy  /orchestrators  /lambda  /orchestrators/webhook  /query
              every call but /healthz, /readyz and /console/ needs a bearer token: %s
                curl -H "Authorization: Bearer $(cat %s)" http://%s/policy
  console     http://%s/console/  (log in with the admin token above)
  warehouse   embedded ClickHouse in %s; requests per orchestrator so far (run it again to
              watch them grow; it goes through the admin port while dev runs, read-only):
                bin/loopgate query 'SELECT orchestrator, count() AS attempts FROM attempts GROUP BY orchestrator ORDER BY orchestrator'
  stop        Ctrl-C: the load stops, every request finishes, every outcome reaches ClickHouse.

`, sc.Name, len(sc.Orchestrators), len(sc.Clients), d.speed, cfg.RouterAddr, simKey(sc.Clients[0].ID),
		sc.Classes[0].Model, cfg.RouterAddr, sc.Classes[0].Capability, cfg.Admin.Addr, auth, devTokenPath(cfg), cfg.Admin.Addr, cfg.Admin.Addr,
		filepath.Join(cfg.DataDir, "chdb"))
}

// devAdmin is dev's admin server: every component's endpoints on one port,
// the router's, the optimizer's and the warehouse's read-only /query.
func devAdmin(cfg Config, ocfg optimizer.Config, p process, rsvc *routerService, osvc *optimizerService, store *warehouse.Store) (*admin.Server, error) {
	srv, err := newAdmin(cfg, p, allReady(rsvc.r.Ready, store.Ping), store)
	if err != nil {
		return nil, err
	}
	rsvc.mount(srv)
	osvc.publicAdvisor = cfg.Livepeer.PublicAdvisor
	osvc.mount(srv)
	if err := mountConsole(srv, p, ocfg); err != nil {
		return nil, err
	}
	srv.Handle("GET /query", admin.RoleRead, queryHandler(store))
	return srv, nil
}

// devTokenPath is where `loopgate dev` keeps the admin token it
// generated, for `loopgate query` and the operator's curl.
func devTokenPath(cfg Config) string { return filepath.Join(cfg.DataDir, "admin-token") }

// devToken gives `loopgate dev` an admin token when none is configured (no
// admin.tokens, no tokens file, nothing in the token variable): a fresh
// random one, added to cfg and saved (0600) where devTokenPath says. It
// returns the secret, or "" when tokens were configured.
func devToken(cfg *Config) (string, error) {
	if len(cfg.Admin.Tokens) > 0 || cfg.Admin.TokensFile != "" || (cfg.Admin.TokenEnv != "" && os.Getenv(cfg.Admin.TokenEnv) != "") {
		return "", nil
	}
	secret, hash, err := admin.GenerateToken(crand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate the dev admin token: %w", err)
	}
	cfg.Admin.Tokens = append(cfg.Admin.Tokens, admin.TokenConfig{ID: "dev", Role: "admin", SHA256: hash})
	path := devTokenPath(*cfg)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("save the dev admin token: %w", err)
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("save the dev admin token: %w", err)
	}
	return secret, nil
}

func (d devLoop) report(sum load.Summary, rows map[string]int64, err error) {
	w := d.env.stdout
	fmt.Fprintln(w, "\nloopgate dev stopped.")
	fmt.Fprintf(w, "  load generator: %d requests sent, %d answered (%d succeeded)\n", sum.Total.Sent, sum.Answered(), sum.Total.Succeeded)
	var stored, canceled int64
	for status, n := range rows {
		stored += n
		if status == "canceled" {
			canceled += n
		}
	}
	fmt.Fprintf(w, "  warehouse:      %d requests from this run (%v)\n", stored, rows)
	if err != nil {
		fmt.Fprintf(w, "  WARNING: %v\n", err)
		return
	}
	if answered := stored - canceled; answered == sum.Answered() {
		fmt.Fprintf(w, "  every answered request is in ClickHouse: %d = %d\n", answered, sum.Answered())
	} else {
		fmt.Fprintf(w, "  answered requests in ClickHouse: %d, load generator: %d (requests whose client gave up are stored as canceled)\n", answered, sum.Answered())
	}
}
