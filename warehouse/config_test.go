package warehouse

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mut     func(c *Config)
		wantErr string // substring; empty for valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"server defaults", func(c *Config) { c.Backend = BackendServer }, ""},
		{"unknown backend", func(c *Config) { c.Backend = "sqlite" }, "backend"},
		{"database with a dot", func(c *Config) { c.Database = "a.b" }, "database"},
		{"database with a quote", func(c *Config) { c.Database = "x'; DROP" }, "database"},
		{"empty database", func(c *Config) { c.Database = "" }, "database"},
		{"unknown profile", func(c *Config) { c.Profile = "ancient" }, "profile"},
		{"negative retention", func(c *Config) { c.RawRetentionDays = -1 }, "retention"},
		{"zero retention keeps forever", func(c *Config) { c.RawRetentionDays, c.RollupRetentionDays = 0, 0 }, ""},
		{"zero check chunk", func(c *Config) { c.CheckChunk = 0 }, "check chunk"},
		{"embedded without data dir", func(c *Config) { c.DataDir = "" }, "data dir"},
		{"server without addr", func(c *Config) { c.Backend, c.Addr = BackendServer, "" }, "addr"},
		{"server without dial timeout", func(c *Config) { c.Backend, c.DialTimeout = BackendServer, 0 }, "dial timeout"},
		{"server without conns", func(c *Config) { c.Backend, c.MaxOpenConns = BackendServer, 0 }, "max open conns"},
		{"cluster on the server", func(c *Config) { c.Backend, c.Cluster = BackendServer, "loopgate" }, ""},
		{"cluster on the embedded engine", func(c *Config) { c.Cluster = "loopgate" }, "server backend"},
		{"cluster name with a quote", func(c *Config) { c.Backend, c.Cluster = BackendServer, "x'y" }, "cluster"},
		{"negative quorum", func(c *Config) { c.Backend, c.Cluster, c.InsertQuorum = BackendServer, "loopgate", -1 }, "insert quorum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mut(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
}

func TestChdbLibPath(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cache := t.TempDir()
	cached := filepath.Join(cache, "chdb-"+ChdbVersion, "libchdb.so")
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cached, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	homeCached := filepath.Join(home, ".cache", "loopgate", "chdb-"+ChdbVersion, "libchdb.so")
	if err := os.MkdirAll(filepath.Dir(homeCached), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(homeCached, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  string
		env  map[string]string
		want string
	}{
		{"config wins", "/a.so", map[string]string{"LOOPGATE_CHDB_LIB": "/b.so", "CHDB_LIB_PATH": "/c.so"}, "/a.so"},
		{"loopgate variable next", "", map[string]string{"LOOPGATE_CHDB_LIB": "/b.so", "CHDB_LIB_PATH": "/c.so"}, "/b.so"},
		{"chdb-go variable last", "", map[string]string{"CHDB_LIB_PATH": "/c.so"}, "/c.so"},
		{"nothing", "", nil, ""},
		{"variables win over the cache", "", map[string]string{"CHDB_LIB_PATH": "/c.so", "LOOPGATE_CACHE": cache}, "/c.so"},
		{"the cache of chdb.sh", "", map[string]string{"LOOPGATE_CACHE": cache}, cached},
		{"the default cache under HOME", "", map[string]string{"HOME": home}, homeCached},
		{"a cache without the library", "", map[string]string{"LOOPGATE_CACHE": t.TempDir()}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := chdbLibPath(Config{LibPath: tt.cfg}, env(tt.env)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLockDataDir(t *testing.T) {
	dir := t.TempDir()
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDataDir(dir); err == nil {
		t.Fatal("got nil error locking a locked data dir")
	}
	release()
	release2, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	release2()
}

// TestChdbVersionMatchesInstaller keeps ChdbVersion and the version that
// deploy/local/chdb.sh installs in step: the cached path depends on both.
func TestChdbVersionMatchesInstaller(t *testing.T) {
	b, err := os.ReadFile("../deploy/local/chdb.sh")
	if err != nil {
		t.Fatal(err)
	}
	want := "CHDB_NPM_VERSION=" + ChdbVersion + "\n"
	if !strings.Contains(string(b), want) {
		t.Errorf("deploy/local/chdb.sh does not set %q: update ChdbVersion or the script", strings.TrimSpace(want))
	}
}
