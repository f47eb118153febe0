package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"golang.org/x/sync/errgroup"
	"gopkg.in/yaml.v3"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/warehouse"
)

// parseFlags parses args into fs, explaining usage on error.
func parseFlags(fs *flag.FlagSet, env *cliEnv, args []string, synopsis string) error {
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "Usage: loopgate %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 && !strings.Contains(synopsis, "SQL") {
		fmt.Fprintf(env.stderr, "unexpected arguments: %v\n", fs.Args())
		fs.Usage()
		return errUsage
	}
	return nil
}

func runIngest(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	load := commonFlags(fs)
	if err := parseFlags(fs, env, args, "ingest [flags]\n\nConsume loopgate.outcomes into ClickHouse; offsets are committed only after the rows are\ndurable, invalid events go to the dead-letter topic. Run one per outcome partition at most.\nWith livepeer.topic set, it also adapts stock go-livepeer's gateway events (docs/LIVEPEER.md)."); err != nil {
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
	pipe, err := newIngestPipeline(cfg, b.brokers, b.store, p)
	if err != nil {
		return err
	}
	defer pipe.Close()
	srv, err := newAdmin(cfg, p, b.store.Ping, b.store)
	if err != nil {
		return err
	}
	var lp *livepeerPipeline
	if cfg.Livepeer.Topic != "" { // stock go-livepeer's gateway events too (docs/LIVEPEER.md)
		if lp, err = newLivepeerPipeline(ctx, cfg, b.brokers, b.store, p); err != nil {
			return err
		}
		defer lp.Close()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return pipe.Run(gctx) })
	g.Go(func() error { return srv.Run(gctx) })
	if lp != nil {
		g.Go(func() error { return lp.Run(gctx) })
	}
	return g.Wait()
}

func runMigrate(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	load := commonFlags(fs)
	if err := parseFlags(fs, env, args, "migrate [flags]\n\nCreate or upgrade the ClickHouse schema (idempotent) and exit."); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	store, err := openWarehouse(ctx, cfg, deps.Deps{Logger: env.log.With("component", "warehouse")})
	if err != nil {
		return err
	}
	defer store.Close()
	fmt.Fprintf(env.stdout, "schema of database %s is current (%s profile)\n", store.Database(), store.Profile().Name)
	return nil
}

func runTopics(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("topics", flag.ContinueOnError)
	load := commonFlags(fs)
	if err := parseFlags(fs, env, args, "topics [flags]\n\nCreate loopgate.outcomes, loopgate.policy (compacted) and loopgate.outcomes.dlq if missing."); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	if _, _, err := kafka(ctx, cfg, false, newProcess(env.log)); err != nil {
		return err
	}
	t := topicsConfig(cfg)
	fmt.Fprintf(env.stdout, "topics ready on %s: %s, %s, %s\n", strings.Join(cfg.Kafka.Brokers, ","), t.Outcomes, t.Policy, t.DLQ)
	return nil
}

func runBroker(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	load := commonFlags(fs)
	if err := parseFlags(fs, env, args, "broker [flags]\n\nRun the embedded Kafka-protocol broker on 127.0.0.1 until interrupted; its log lives in\n<data-dir>/kafka. For development: production uses a real Kafka cluster."); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	cfg.Kafka.Brokers = nil
	brokers, stop, err := kafka(ctx, cfg, true, newProcess(env.log))
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(env.stdout, "broker listening on %s; Ctrl-C stops it\n", brokers[0])
	<-ctx.Done()
	return nil
}

func runQuery(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	load := commonFlags(fs)
	format := fs.String("format", "table", "output `format`: table or json")
	if err := parseFlags(fs, env, args, "query [flags] SQL\n\nRun one read-only SQL statement on the warehouse and print the rows (while loopgate dev runs,\nthrough its admin port, with the token in $LOOPGATE_ADMIN_TOKEN or the one dev saved), e.g.\n  loopgate query 'SELECT count() FROM requests'\nOne statement only; SELECT, WITH, SHOW, DESCRIBE, EXPLAIN or EXISTS; no table functions that\nreach files, URLs or other servers, no INTO OUTFILE; ClickHouse runs it with readonly = 1."); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	sql := fs.Arg(0)
	if err := warehouse.CheckReadOnly(sql); err != nil {
		return err // before opening anything
	}
	var rows *warehouse.Rows
	// Only warnings: the rows are the output.
	quiet := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := openWarehouse(ctx, cfg, deps.Deps{Logger: quiet})
	switch {
	case errors.Is(err, warehouse.ErrDataDirInUse) || errors.Is(err, warehouse.ErrEngineInUse):
		// A running `loopgate dev` owns the embedded engine: ask it.
		rows, err = queryRunningDev(ctx, cfg, sql)
	case err == nil:
		defer store.Close()
		rows, err = store.QueryReadOnly(ctx, sql)
	}
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows.Maps())
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(rows.Columns, "\t"))
	for _, r := range rows.Values {
		cells := make([]string, len(r))
		for i, v := range r {
			cells[i] = fmt.Sprint(v)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// printConfig writes cfg as YAML: every setting with its value (the
// ClickHouse password masked).
func printConfig(env *cliEnv, cfg Config) error {
	if cfg.Warehouse.Password != "" {
		cfg.Warehouse.Password = "********"
	}
	return printYAML(env.stdout, cfg)
}

func printYAML(w io.Writer, v any) error {
	enc := yaml.NewEncoder(w)
	defer enc.Close()
	return enc.Encode(v)
}
