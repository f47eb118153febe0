//go:build nochdb

package warehouse

import "fmt"

// bindChdb refuses: this binary was built with -tags nochdb (fully static,
// no dynamic loader), so only the server backend runs.
func bindChdb(path string) (*chdbLib, error) {
	return nil, fmt.Errorf("%w: this loopgate was built with -tags nochdb (a static binary without the embedded engine, e.g. the default container image); use warehouse.backend: server or a build with libchdb (the image's chdb target)", ErrNoChdb)
}
