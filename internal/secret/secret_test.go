package secret_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/loopgate/loopgate/internal/secret"
)

// TestNeverPrinted formats a secret, alone and inside a struct, every way a
// log line or a config dump could, and finds the value in none.
func TestNeverPrinted(t *testing.T) {
	const value = "hunter2-very-secret"
	s := secret.String(value)
	type cfg struct {
		User     string
		Password secret.String
	}
	c := cfg{User: "ingest", Password: s}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "password", s, "cfg", c)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "password", s)
	js, _ := json.Marshal(c)
	ys, _ := yaml.Marshal(c)
	outs := map[string]string{
		"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s), "%q": fmt.Sprintf("%q", s), "%x": fmt.Sprintf("%x", s),
		"%#v": fmt.Sprintf("%#v", s), "struct %+v": fmt.Sprintf("%+v", c), "struct %#v": fmt.Sprintf("%#v", c),
		"slog": logs.String(), "json": string(js), "yaml": string(ys),
	}
	for how, out := range outs {
		if strings.Contains(out, value) {
			t.Errorf("%s: got %q, which contains the secret", how, out)
		}
		if !strings.Contains(out, secret.Redacted) {
			t.Errorf("%s: got %q, want %q in it", how, out, secret.Redacted)
		}
	}
	if s.Reveal() != value {
		t.Errorf("Reveal: got %q, want the value", s.Reveal())
	}
}

func TestFromFile(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "pw")
	empty := filepath.Join(dir, "empty")
	os.WriteFile(ok, []byte("s3cret-value\n"), 0o600)
	os.WriteFile(empty, []byte("\n"), 0o600)
	tests := []struct {
		name, path, want string
		ok               bool
	}{
		{"trailing newline dropped", ok, "s3cret-value", true},
		{"empty file", empty, "", false},
		{"missing file", filepath.Join(dir, "nope"), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := secret.FromFile(tt.path)
			if (err == nil) != tt.ok || got.Reveal() != tt.want {
				t.Fatalf("got %q, %v; want %q, ok=%v", got.Reveal(), err, tt.want, tt.ok)
			}
		})
	}
}
