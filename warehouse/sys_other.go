//go:build !unix

package warehouse

import "errors"

// lockDataDir is a no-op where flock is unavailable (libchdb ships for
// Linux and macOS only, so the embedded backend does not run there anyway).
func lockDataDir(string) (release func(), err error) { return func() {}, nil }

// dlopen is unavailable: chDB ships for Linux and macOS only.
func dlopen(string) (uintptr, error) {
	return 0, errors.New("embedded backend needs Linux or macOS")
}
