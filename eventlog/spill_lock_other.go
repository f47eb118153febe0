//go:build !unix

package eventlog

import (
	"fmt"
	"os"
)

// lockDir opens the lock file; without flock there is no protection against
// two publishers sharing a spill directory on this platform.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open spill lock: %w", err)
	}
	return f, nil
}
