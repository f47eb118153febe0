package tlsconf_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/internal/tlsconf"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	certs := testenv.TLSCerts(t, dir)
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o600)
	tests := []struct {
		name    string
		cfg     tlsconf.Config
		wantNil bool   // plaintext
		wantErr string // "" for success
	}{
		{"off", tlsconf.Config{}, true, ""},
		{"system roots", tlsconf.Config{Enabled: true}, false, ""},
		{"own CA and client cert", tlsconf.Config{Enabled: true, CAFile: certs.CAFile, CertFile: certs.CertFile, KeyFile: certs.KeyFile, ServerName: "localhost"}, false, ""},
		{"CA not PEM", tlsconf.Config{Enabled: true, CAFile: garbage}, false, "garbage.pem"},
		{"CA missing", tlsconf.Config{Enabled: true, CAFile: filepath.Join(dir, "none.pem")}, false, "ca_file"},
		{"cert without key", tlsconf.Config{Enabled: true, CertFile: certs.CertFile}, false, "key_file"},
		{"key is not the cert's", tlsconf.Config{Enabled: true, CertFile: certs.CAFile, KeyFile: certs.KeyFile}, false, "client certificate"},
		{"files but off", tlsconf.Config{CAFile: certs.CAFile}, false, "enabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, err := tt.cfg.Load()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (tc == nil) != tt.wantNil {
				t.Fatalf("got config %v, want nil=%v", tc, tt.wantNil)
			}
			if tc != nil && tt.cfg.CAFile != "" && tc.RootCAs == nil {
				t.Fatal("got no root CAs from ca_file")
			}
			if tc != nil && tt.cfg.CertFile != "" && len(tc.Certificates) != 1 {
				t.Fatalf("got %d client certificates, want 1", len(tc.Certificates))
			}
		})
	}
}
