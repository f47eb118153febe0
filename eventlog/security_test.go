package eventlog_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/internal/secret"
	"github.com/loopgate/loopgate/internal/tlsconf"
)

func TestSecurityValidate(t *testing.T) {
	valid := func() eventlog.Security {
		return eventlog.Security{
			TLS:  tlsconf.Config{Enabled: true},
			SASL: eventlog.SASL{Mechanism: eventlog.SASLScramSHA512, Username: "ingest", PasswordFile: "/run/secrets/kafka"},
		}
	}
	runValidate(t, valid, eventlog.Security.Validate, []validateCase[eventlog.Security]{
		{"SASL_SSL", func(*eventlog.Security) {}, ""},
		{"plaintext", func(c *eventlog.Security) { *c = eventlog.Security{} }, ""},
		{"PLAIN from the environment", func(c *eventlog.Security) {
			c.SASL = eventlog.SASL{Mechanism: eventlog.SASLPlain, Username: "u", Password: "p"}
		}, ""},
		{"unknown mechanism", func(c *eventlog.Security) { c.SASL.Mechanism = "GSSAPI" }, "mechanism"},
		{"no username", func(c *eventlog.Security) { c.SASL.Username = "" }, "username"},
		{"no password", func(c *eventlog.Security) { c.SASL.PasswordFile = "" }, "password"},
		{"credentials without mechanism", func(c *eventlog.Security) { c.SASL.Mechanism = "" }, "mechanism is empty"},
		{"client cert without key", func(c *eventlog.Security) { c.TLS.CertFile = "/x.pem" }, "key_file"},
		{"files without tls", func(c *eventlog.Security) { c.TLS = tlsconf.Config{CAFile: "/ca.pem"} }, "tls.enabled"},
	})
}

// TestSecurityErrorsAndPrintsHoldNoSecret: building clients from a
// Security whose files are wrong fails with errors that name the file, and
// neither those errors, nor the configs printed with %+v, nor the logs of a
// constructed writer contain the password.
func TestSecurityErrorsAndPrintsHoldNoSecret(t *testing.T) {
	const pw = "kafka-pw-that-must-not-leak"
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte(pw+"\n"), 0o600)
	notPEM := filepath.Join(dir, "ca.pem")
	os.WriteFile(notPEM, []byte(pw), 0o600) // a "CA" whose content is the secret

	var logs bytes.Buffer
	d := deps.Deps{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	tests := []struct {
		name    string
		sec     eventlog.Security
		wantErr string
	}{
		{"ok from file", eventlog.Security{TLS: tlsconf.Config{Enabled: true}, SASL: eventlog.SASL{Mechanism: eventlog.SASLPlain, Username: "u", PasswordFile: pwFile}}, ""},
		{"ok from environment", eventlog.Security{SASL: eventlog.SASL{Mechanism: eventlog.SASLScramSHA256, Username: "u", Password: secret.String(pw)}}, ""},
		{"missing password file", eventlog.Security{SASL: eventlog.SASL{Mechanism: eventlog.SASLPlain, Username: "u", PasswordFile: filepath.Join(dir, "nope")}}, "nope"},
		{"CA file not PEM", eventlog.Security{TLS: tlsconf.Config{Enabled: true, CAFile: notPEM}}, "ca.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wcfg := eventlog.DefaultWriterConfig()
			wcfg.Brokers, wcfg.Topic, wcfg.Security = []string{"127.0.0.1:1"}, "t", tt.sec
			w, err := eventlog.NewWriter(wcfg, d)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error naming %q", err, tt.wantErr)
			}
			if w != nil {
				w.Close()
			}
			rcfg := eventlog.DefaultReaderConfig()
			rcfg.Security = tt.sec
			for what, s := range map[string]string{
				"error": fmt.Sprint(err), "writer config": fmt.Sprintf("%+v", wcfg),
				"reader config": fmt.Sprintf("%#v", rcfg), "logs": logs.String(),
			} {
				if strings.Contains(s, pw) {
					t.Errorf("%s contains the password: %s", what, s)
				}
			}
		})
	}
}
