//go:build unix && !nochdb

package warehouse

import "github.com/ebitengine/purego"

// dlopen loads a shared library with every symbol resolved now and visible
// to libraries loaded later, as chdb-go loads it.
func dlopen(path string) (uintptr, error) {
	return purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
}
