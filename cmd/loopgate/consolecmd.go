package main

import (
	"fmt"

	"github.com/loopgate/loopgate/admin"
	"github.com/loopgate/loopgate/console"
)

// mountConsole puts the operator's console (package console) on the admin
// server: the page at /console/, its data from the routes already there.
func mountConsole(srv *admin.Server, p process) error {
	c, err := console.New(console.DefaultConfig(), p.deps("console"))
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	c.Mount(srv)
	return nil
}
