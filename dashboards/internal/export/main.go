// Command export writes loopgate's dashboards as Grafana JSON into the
// directory given as its argument. `go generate ./dashboards` runs it.
package main

import (
	"fmt"
	"os"

	"github.com/loopgate/loopgate/dashboards"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: export DIR")
		os.Exit(2)
	}
	if err := dashboards.Export(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "export:", err)
		os.Exit(1)
	}
}
