package main

import (
	"fmt"

	"github.com/loopgate/loopgate/admin"
	"github.com/loopgate/loopgate/console"
	"github.com/loopgate/loopgate/optimizer"
)

// mountConsole puts the operator's console (package console) on the admin
// server: the page at /console/, its data from the routes already there.
// Its SLO chart holds each class to the optimizer catalog's SLO (others to
// the optimizer's default), the targets the frontier predicts against.
// A catalog reloaded by SIGHUP reaches the chart at the next start.
func mountConsole(srv *admin.Server, p process, ocfg optimizer.Config) error {
	ccfg := console.DefaultConfig()
	ccfg.SLO = ocfg.DefaultSLO
	for _, cl := range ocfg.Catalog.Classes {
		slo := cl.SLO
		if slo == 0 {
			slo = ocfg.DefaultSLO
		}
		ccfg.ClassSLOs = append(ccfg.ClassSLOs, console.ClassSLO{Capability: cl.Capability, Model: cl.Model, SLO: slo})
	}
	c, err := console.New(ccfg, p.deps("console"))
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	c.Mount(srv)
	return nil
}
