// Package secret holds a credential so that it cannot leak by being
// printed: a String formats, logs and marshals as "[redacted]", and only
// Reveal gives the value, at the one place that hands it to a client.
//
//	pw, err := secret.FromFile("/run/secrets/kafka-password")
//	mech, err := plain.Mechanism{Username: "ingest", Password: pw.Reveal()}
//	slog.Info("connecting", "password", pw) // password=[redacted]
package secret

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Redacted is what a String shows instead of its value.
const Redacted = "[redacted]"

// String is a secret value.
type String string

// Reveal returns the value, for the client that needs it.
func (s String) Reveal() string { return string(s) }

// IsSet reports whether the value is non-empty.
func (s String) IsSet() bool { return s != "" }

// String implements fmt.Stringer: every %v, %s and %+v shows Redacted.
func (s String) String() string { return Redacted }

// GoString implements fmt.GoStringer (%#v).
func (s String) GoString() string { return `secret.String("` + Redacted + `")` }

// Format implements fmt.Formatter, so %q, %x and %d cannot bypass String.
func (s String) Format(f fmt.State, _ rune) { fmt.Fprint(f, Redacted) }

// LogValue implements slog.LogValuer.
func (s String) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalText implements encoding.TextMarshaler (JSON, YAML and others).
func (s String) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// MarshalYAML keeps yaml.v3 from writing the value.
func (s String) MarshalYAML() (any, error) { return Redacted, nil }

// FromFile reads a secret from path (one value; surrounding whitespace,
// such as the trailing newline of `echo secret > file`, is dropped). The
// error names the file, never its content.
func FromFile(path string) (String, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return String(v), nil
}
