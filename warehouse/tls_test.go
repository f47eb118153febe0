package warehouse

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/internal/tlsconf"
)

const tlsUserPassword = "ch-tls-s3cret-pw"

// startTLSServer runs a clickhouse-server of the test's own whose only
// native port is the secure one (tcp_port_secure, certificate generated in
// the test), with a user "loopgate" whose password is tlsUserPassword. It
// returns the secure address and the CA file.
func startTLSServer(t *testing.T) (addr, caFile string) {
	t.Helper()
	server, err := exec.LookPath("clickhouse-server")
	if err != nil {
		if testenv.CI() {
			t.Fatalf("clickhouse-server is required under CI=true: %v", err)
		}
		t.Skipf("clickhouse-server not available: %v", err)
	}
	dir := t.TempDir()
	certs := testenv.TLSCerts(t, dir)
	addr = testenv.FreeAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	http := testenv.FreeAddr(t)
	data := filepath.Join(dir, "data")
	config := fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><console>1</console></logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port_secure>%s</tcp_port_secure>
    <http_port>%s</http_port>
    <openSSL>
        <server>
            <certificateFile>%s</certificateFile>
            <privateKeyFile>%s</privateKeyFile>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>
    <path>%s/</path>
    <tmp_path>%s/tmp/</tmp_path>
    <user_files_path>%s/user_files/</user_files_path>
    <format_schema_path>%s/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <mark_cache_size>67108864</mark_cache_size>
</yandex>
`, port, http[strings.LastIndex(http, ":")+1:], certs.CertFile, certs.KeyFile, data, data, data, data)
	users := fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
    <profiles><default>
        <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
    </default></profiles>
    <users>
        <default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default>
        <loopgate><password>%s</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></loopgate>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`, tlsUserPassword)
	cfgFile := filepath.Join(dir, "config.xml")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(server, "--config-file="+cfgFile)
	cmd.Dir = dir
	testenv.Start(t, cmd, "clickhouse-tls.log")
	return addr, certs.CAFile
}

// TestServerTLS writes and reads outcomes over the secure native port with
// the CA generated for it, as a password-protected user; a client that
// does not trust the CA, and one with a wrong password, are refused, and
// no error carries a password.
func TestServerTLS(t *testing.T) {
	addr, ca := startTLSServer(t)
	cfg := testConfig(t, testBackend{"server", BackendServer, ProfileAuto})
	cfg.Addr, cfg.Username, cfg.Password = addr, "loopgate", tlsUserPassword
	cfg.TLS = tlsconf.Config{Enabled: true, CAFile: ca}
	cfg.DialTimeout = 5 * time.Second

	var s *Store
	testenv.Eventually(t, 60*time.Second, "clickhouse-server answers over TLS", func() bool {
		st, err := Open(context.Background(), cfg, deps.Deps{})
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			return false
		}
		s = st
		return true
	})
	t.Cleanup(func() { dropDatabase(t, s); s.Close() })
	const n = 500
	if err := s.WriteOutcomes(context.Background(), "tls", outcomes(1, 0, n)); err != nil {
		t.Fatalf("write over TLS: %v", err)
	}
	checkExactlyOnce(t, s, n)

	refused := []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"CA not trusted", func(c *Config) { c.TLS = tlsconf.Config{Enabled: true} }, "certificate"},
		{"plaintext to the TLS port", func(c *Config) { c.TLS = tlsconf.Config{} }, ""},
		{"wrong password", func(c *Config) { c.Password = "wrong-" + tlsUserPassword }, "password"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			tt.mut(&c)
			c.DialTimeout = 3 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := Open(ctx, c, deps.Deps{})
			if err == nil {
				st.Close()
				t.Fatal("got a connection, want it refused")
			}
			if tt.want != "" && !strings.Contains(strings.ToLower(err.Error()), tt.want) {
				t.Errorf("got %v, want an error about the %s", err, tt.want)
			}
			if strings.Contains(err.Error(), tlsUserPassword) {
				t.Errorf("the error holds the password: %v", err)
			}
		})
	}
}
