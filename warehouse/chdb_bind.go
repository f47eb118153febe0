//go:build !nochdb

package warehouse

import (
	"fmt"

	"github.com/ebitengine/purego"
)

// bindChdb dlopens libchdb.so at path and binds the chdb_* C API with
// purego. Without cgo, purego still makes the binary dynamically linked
// against the C library (its dlopen goes through ld.so); the build tag
// nochdb leaves this file out for a fully static binary that has only the
// server backend (the Dockerfile's default image).
func bindChdb(path string) (lib *chdbLib, err error) {
	h, err := dlopen(path)
	if err != nil {
		return nil, fmt.Errorf("%w: dlopen %s: %w", ErrNoChdb, path, err)
	}
	// RegisterLibFunc panics on a missing symbol (an older libchdb without
	// the chdb_* API); turn that into an error.
	defer func() {
		if r := recover(); r != nil {
			lib, err = nil, fmt.Errorf("%w: %s lacks the chdb_connect API: %v", ErrNoChdb, path, r)
		}
	}()
	l := &chdbLib{}
	purego.RegisterLibFunc(&l.connect, h, "chdb_connect")
	purego.RegisterLibFunc(&l.closeConn, h, "chdb_close_conn")
	purego.RegisterLibFunc(&l.query, h, "chdb_query")
	purego.RegisterLibFunc(&l.destroy, h, "chdb_destroy_query_result")
	purego.RegisterLibFunc(&l.buffer, h, "chdb_result_buffer")
	purego.RegisterLibFunc(&l.length, h, "chdb_result_length")
	purego.RegisterLibFunc(&l.errorMsg, h, "chdb_result_error")
	return l, nil
}
