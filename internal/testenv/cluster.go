package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Cluster is a test's own distributed deployment, run by
// deploy/local/cluster.sh on ports of its own (never the services that
// `make test` shares): ZooKeeper, two ClickHouse replicas of one shard and,
// when asked for, three Kafka brokers.
type Cluster struct {
	// Name is the ClickHouse cluster (remote_servers) name.
	Name string
	// ClickHouse are the replicas' native addresses, replica 1 first.
	ClickHouse []string
	// Kafka are the brokers' addresses, broker 1 first (none without Kafka).
	Kafka []string

	script string
	env    []string
}

// StartCluster brings a Cluster up for the test and down after it. Without
// ZooKeeper, ClickHouse or Kafka installable (they need root to install
// once) the test skips, or fails under CI=true.
func StartCluster(t testing.TB, withKafka bool) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("a cluster of real processes")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{script: filepath.Join(root, "deploy", "local", "cluster.sh")}
	kafka := "0"
	if withKafka {
		kafka = "1"
	}
	c.env = append(os.Environ(), "LOOPGATE_VAR="+t.TempDir(), fmt.Sprintf("CLUSTER_PORT_BASE=%d", portBase(t)), "CLUSTER_KAFKA="+kafka)
	t.Cleanup(func() {
		if out, err := c.run("down"); err != nil {
			t.Errorf("cluster.sh down: %v\n%s", err, out)
		}
	})
	out, err := c.run("up")
	if err != nil {
		missing(t, "the cluster (deploy/local/cluster.sh up)", fmt.Sprintf("%v\n%s", err, out))
	}
	env, err := c.run("env")
	if err != nil {
		t.Fatalf("cluster.sh env: %v\n%s", err, env)
	}
	for _, line := range strings.Split(env, "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, "'")
		switch k {
		case "LOOPGATE_TEST_CLUSTER_NAME":
			c.Name = v
		case "LOOPGATE_TEST_CLUSTER_CLICKHOUSE":
			c.ClickHouse = strings.Split(v, ",")
		case "LOOPGATE_TEST_CLUSTER_KAFKA":
			c.Kafka = strings.Split(v, ",")
		}
	}
	if c.Name == "" || len(c.ClickHouse) != 2 || (withKafka && len(c.Kafka) != 3) {
		t.Fatalf("cluster.sh env: got %q", env)
	}
	return c
}

// Stop stops one member: "zookeeper", "clickhouse-1", "kafka-2", ...
func (c *Cluster) Stop(t testing.TB, member string) {
	t.Helper()
	if out, err := c.run("stop", member); err != nil {
		t.Fatalf("cluster.sh stop %s: %v\n%s", member, err, out)
	}
}

// Start starts a stopped member again and waits until it serves.
func (c *Cluster) Start(t testing.TB, member string) {
	t.Helper()
	if out, err := c.run("start", member); err != nil {
		t.Fatalf("cluster.sh start %s: %v\n%s", member, err, out)
	}
}

func (c *Cluster) run(args ...string) (string, error) {
	cmd := exec.Command(c.script, args...)
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// portBase is a base for cluster.sh's ports (BASE+1 … BASE+60) with every
// port it uses free a moment ago, below Linux's ephemeral range (32768+)
// so no outgoing connection takes one while the JVMs start.
func portBase(t testing.TB) int {
	t.Helper()
	offsets := []int{1, 11, 12, 13, 21, 22, 23, 31, 32, 41, 42, 51, 52}
	for range 200 {
		base := 20000 + 100*int(time.Now().UnixNano()%120)
		ok := true
		for _, o := range offsets {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+o))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no free port range in [20000, 32000)")
	return 0
}

// repoRoot is the directory holding go.mod, above the test's directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test directory")
		}
		dir = parent
	}
}
