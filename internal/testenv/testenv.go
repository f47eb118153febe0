// Package testenv tells integration tests where the real services that
// `make test` starts are (deploy/local/services.sh), and decides what a test
// does when one is missing: skip on a developer's machine, fail under CI=true,
// where a missing service is a broken run and never a silent skip.
//
// The services are named by environment variables:
//
//	LOOPGATE_TEST_KAFKA        Apache Kafka bootstrap address, e.g. 127.0.0.1:19092
//	LOOPGATE_TEST_CLICKHOUSE   ClickHouse server native address, e.g. 127.0.0.1:19000
//	LOOPGATE_CHDB_LIB          path of libchdb.so for the embedded engine
//
// and, for benchmarks that count each process's CPU, by the pid files
// LOOPGATE_TEST_KAFKA_PIDFILE and LOOPGATE_TEST_CLICKHOUSE_PIDFILE.
//
// StartCluster is the exception: a test that needs loopgate's distributed
// form (ZooKeeper, two ClickHouse replicas, three Kafka brokers) starts its
// own with deploy/local/cluster.sh on free ports, and stops it after.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Kafka returns the bootstrap address of the real Apache Kafka broker.
func Kafka(t testing.TB) string { return need(t, "LOOPGATE_TEST_KAFKA", "Apache Kafka") }

// ClickHouse returns the native-protocol address of the ClickHouse server.
func ClickHouse(t testing.TB) string {
	return need(t, "LOOPGATE_TEST_CLICKHOUSE", "ClickHouse server")
}

// ChdbLib returns the path of libchdb.so.
func ChdbLib(t testing.TB) string {
	p := need(t, "LOOPGATE_CHDB_LIB", "libchdb.so")
	if _, err := os.Stat(p); err != nil {
		missing(t, "libchdb.so", err.Error())
	}
	return p
}

// CI reports whether the tests run under CI (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

func need(t testing.TB, env, what string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		missing(t, what, env+" is not set (run the tests with `make test`, which starts the services)")
	}
	return v
}

func missing(t testing.TB, what, why string) {
	t.Helper()
	if CI() {
		t.Fatalf("%s is required under CI=true: %s", what, why)
	}
	t.Skipf("%s not available: %s", what, why)
}

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago,
// for a server a test starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Eventually polls cond every 10 ms until it holds, and fails the test
// naming what did not happen when d passes first.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Start runs cmd until the test ends, its output in a file named logName,
// then stops it (SIGINT, a kill after 20 s). When the test failed, the last
// 6 KiB of the output go to the test log. The returned channel is closed
// once the process has exited.
func Start(t testing.TB, cmd *exec.Cmd, logName string) <-chan struct{} {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), logName))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			if len(out) > 6<<10 {
				out = out[len(out)-6<<10:]
			}
			t.Logf("%s (last 6 KiB):\n%s", logName, out)
		}
	})
	return done
}
