package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/warehouse"
)

// childArgsEnv carries the arguments of a loopgate command that the test
// binary runs as its own process (TestMain), so tests can signal a real
// loopgate process without building the binary.
const childArgsEnv = "LOOPGATE_TEST_CLI_ARGS"

func TestMain(m *testing.M) {
	if v := os.Getenv(childArgsEnv); v != "" {
		var args []string
		if err := json.Unmarshal([]byte(v), &args); err != nil {
			os.Stderr.WriteString("bad " + childArgsEnv + ": " + err.Error() + "\n")
			os.Exit(2)
		}
		os.Exit(run(args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// cliCommand is loopgate with args as a child process, with no libchdb
// variable in its environment: it must find the library where `make run`
// and `make test` cache it. It skips (fails under CI) when the cached
// library is not where deploy/local/chdb.sh puts it.
func cliCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	lib := testenv.ChdbLib(t)
	cmd := cliChild(t, args...)
	cacheDir := filepath.Dir(filepath.Dir(lib))
	if filepath.Base(filepath.Dir(lib)) != "chdb-"+warehouse.ChdbVersion {
		t.Fatalf("libchdb at %s is not in deploy/local/chdb.sh's cache layout (chdb-%s/libchdb.so)", lib, warehouse.ChdbVersion)
	}
	cmd.Env = append(cmd.Env, "LOOPGATE_CACHE="+cacheDir)
	return cmd
}

// cliChild is loopgate with args as a child process: the test binary
// running main's run (TestMain), with no libchdb variable set.
func cliChild(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	b, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LOOPGATE_CHDB_LIB=") || strings.HasPrefix(kv, "CHDB_LIB_PATH=") || strings.HasPrefix(kv, "LOOPGATE_CACHE=") {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, childArgsEnv+"="+string(b))
	return cmd
}
