package main

import (
	"context"
	"flag"
)

func runDev(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	load := commonFlags(fs)
	printCfg := fs.Bool("print-config", false, "print every setting with its value and exit")
	if err := parseFlags(fs, env, args, "dev [flags]"); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	if *printCfg {
		return printConfig(env, cfg)
	}
	return nil
}
