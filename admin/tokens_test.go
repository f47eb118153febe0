package admin

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
	"testing/iotest"
)

// TestLookupComparesEveryToken: the presented secret's hash is compared
// with every token's, in constant time, whether a token matches first,
// last or not at all.
func TestLookupComparesEveryToken(t *testing.T) {
	secrets := []string{"s0-0123456789abcdef", "s1-0123456789abcdef", "s2-0123456789abcdef", "s3-0123456789abcdef"}
	var toks []token
	for i, s := range secrets {
		tok, err := TokenConfig{ID: "t" + string(rune('0'+i)), Role: "read", SHA256: HashSecret(s)}.token()
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	set := newTokenSet(toks)
	calls := 0
	set.compare = func(a, b []byte) int {
		calls++
		if len(a) != 32 || len(b) != 32 {
			t.Errorf("compared %d with %d bytes, want hashes of 32", len(a), len(b))
		}
		return subtle.ConstantTimeCompare(a, b)
	}
	tests := []struct {
		secret string
		id     string
		ok     bool
	}{
		{secrets[0], "t0", true},
		{secrets[3], "t3", true},
		{"s9-0123456789abcdef", "", false},
		{"", "", false},
		{HashSecret(secrets[1]), "", false},
	}
	for _, tc := range tests {
		calls = 0
		tok, ok := set.lookup(tc.secret)
		if ok != tc.ok || tok.id != tc.id {
			t.Errorf("lookup(%q): got %q, %v; want %q, %v", tc.secret, tok.id, ok, tc.id, tc.ok)
		}
		if calls != len(secrets) {
			t.Errorf("lookup(%q): got %d comparisons, want %d (no early exit)", tc.secret, calls, len(secrets))
		}
	}
}

func TestGenerateToken(t *testing.T) {
	secret, hash, err := GenerateToken(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, secretPrefix) || len(secret) != len(secretPrefix)+43 {
		t.Errorf("secret: got %q, want %s and 43 base64url characters", secret, secretPrefix)
	}
	if hash != HashSecret(secret) {
		t.Errorf("hash: got %s, want HashSecret(secret) %s", hash, HashSecret(secret))
	}
	if _, err := (TokenConfig{ID: "dev", Role: "admin", SHA256: hash}).token(); err != nil {
		t.Errorf("generated token as config: %v", err)
	}
	if _, _, err := GenerateToken(iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Error("GenerateToken from a failing reader: got nil, want an error")
	}
	if _, _, err := GenerateToken(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Error("GenerateToken from 31 bytes: got nil, want an error")
	}
}

func TestParseTokensFile(t *testing.T) {
	const long = "0123456789abcdef-secret"
	tests := []struct {
		name    string
		file    string
		want    []TokenConfig
		wantErr string
	}{
		{"empty", "", nil, ""},
		{"comments and blanks", "# id role secret\n\n   \n\t# x\n", nil, ""},
		{"secret", "grafana read " + long + "\n", []TokenConfig{{ID: "grafana", Role: "read", SHA256: HashSecret(long)}}, ""},
		{"tabs and CRLF", "ops\tadmin\t" + long + "\r\n", []TokenConfig{{ID: "ops", Role: "admin", SHA256: HashSecret(long)}}, ""},
		{"hash", "ops admin sha256:" + HashSecret(long), []TokenConfig{{ID: "ops", Role: "admin", SHA256: HashSecret(long)}}, ""},
		{"two", "a read " + long + "x\nb admin " + long + "y\n", []TokenConfig{{ID: "a", Role: "read", SHA256: HashSecret(long + "x")}, {ID: "b", Role: "admin", SHA256: HashSecret(long + "y")}}, ""},
		{"two fields", "ops " + long, nil, "line 1: want \"id role secret\", got 2 fields"},
		{"four fields", "\nops admin " + long + " x", nil, "line 2: want \"id role secret\", got 4 fields"},
		{"bad role", "ops root " + long, nil, "line 1: role"},
		{"public role", "ops public " + long, nil, "line 1: role"},
		{"columns swapped", "ops " + long + " admin", nil, "line 1: role"},
		{"bad id", "op$ admin " + long, nil, "line 1: id"},
		{"short secret", "ops admin short", nil, "line 1: secret: want at least 16"},
		{"bad hash", "ops admin sha256:xyz", nil, "line 1: sha256"},
		{"duplicate id", "a read " + long + "\na admin " + long + "z", nil, "line 2: id given twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTokensFile([]byte(tc.file))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), long) {
					t.Errorf("error %q contains the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("token %d: got %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// FuzzParseTokensFile: the parser never panics, its errors never contain
// a field of the file that could be a secret, and what it accepts is valid
// config.
func FuzzParseTokensFile(f *testing.F) {
	for _, s := range []string{
		"", "# c\n", "a read 0123456789abcdef0\n", "ops admin sha256:" + HashSecret("x"),
		"a b", "a read short", "x admin 0123456789abcdef0\r\nx read 0123456789abcdef1",
		"ops 0123456789abcdef0 admin", strings.Repeat("a", 70) + " read 0123456789abcdef0",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseTokensFile(data)
		if err != nil {
			for _, field := range strings.Fields(string(data)) {
				if len(field) >= minSecretLen && strings.Contains(err.Error(), field) {
					t.Fatalf("error %q contains the field %q", err, field)
				}
			}
			return
		}
		ids := map[string]bool{}
		for _, tc := range got {
			if _, err := tc.token(); err != nil {
				t.Fatalf("accepted %+v, which is not a valid token: %v", tc, err)
			}
			if ids[tc.ID] {
				t.Fatalf("accepted id %q twice", tc.ID)
			}
			ids[tc.ID] = true
		}
	})
}

func TestLoadTokens(t *testing.T) {
	const (
		fileSecret = "file-secret-0123456789"
		envSecret  = "env-secret-0123456789"
	)
	files := map[string]string{
		"/tokens":     "grafana read " + fileSecret + "\n",
		"/dup-id":     "ops read " + fileSecret + "\n",
		"/dup-secret": "other read " + envSecret + "\n",
		"/bad":        "grafana read\n",
	}
	readFile := func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, fs.ErrNotExist
	}
	tests := []struct {
		name    string
		file    string
		env     string
		wantIDs []string
		wantErr string
	}{
		{"config only", "", "", []string{"ops"}, ""},
		{"config, file and env", "/tokens", envSecret, []string{"ops", "grafana", "env"}, ""},
		{"missing file", "/nope", "", nil, "read admin tokens file"},
		{"bad file", "/bad", "", nil, "line 1"},
		{"id in config and file", "/dup-id", "", nil, `"ops" given twice`},
		{"one secret two ids", "/dup-secret", envSecret, nil, "same secret"},
		{"short env secret", "", "short", nil, "$LOOPGATE_ADMIN_TOKEN: want at least 16"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Tokens = []TokenConfig{{ID: "ops", Role: "admin", SHA256: HashSecret("ops-secret-0123456789")}}
			cfg.TokensFile = tc.file
			getenv := func(k string) string {
				if k == DefaultTokenEnv {
					return tc.env
				}
				return ""
			}
			var logs bytes.Buffer
			got, err := loadTokens(cfg, getenv, readFile, slog.New(slog.NewTextHandler(&logs, nil)))
			for _, s := range []string{fileSecret, envSecret, "ops-secret-0123456789"} {
				if err != nil && strings.Contains(err.Error(), s) || strings.Contains(logs.String(), s) {
					t.Errorf("a secret in the error %v or the log %s", err, logs.String())
				}
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, tok := range got {
				ids = append(ids, tok.id)
			}
			if strings.Join(ids, ",") != strings.Join(tc.wantIDs, ",") {
				t.Errorf("ids: got %v, want %v", ids, tc.wantIDs)
			}
			if tc.env != "" {
				set := newTokenSet(got)
				if tok, ok := set.lookup(tc.env); !ok || tok.role != RoleAdmin || tok.id != "env" {
					t.Errorf("env token: got %+v, %v; want id env, admin", tok, ok)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tok := TokenConfig{ID: "ops", Role: "admin", SHA256: HashSecret("ops-secret-0123456789")}
	tests := []struct {
		name    string
		mut     func(*Config)
		wantErr string
	}{
		{"default", func(*Config) {}, ""},
		{"disabled", func(c *Config) { c.Addr = "" }, ""},
		{"token", func(c *Config) { c.Tokens = []TokenConfig{tok} }, ""},
		{"bad addr", func(c *Config) { c.Addr = "9464" }, "admin addr"},
		{"bad role", func(c *Config) { c.Tokens = []TokenConfig{{ID: "a", Role: "root", SHA256: tok.SHA256}} }, "role"},
		{"public role", func(c *Config) { c.Tokens = []TokenConfig{{ID: "a", Role: "public", SHA256: tok.SHA256}} }, "role"},
		{"short hash", func(c *Config) { c.Tokens = []TokenConfig{{ID: "a", Role: "read", SHA256: "abc"}} }, "64 hex"},
		{"non-hex hash", func(c *Config) { c.Tokens = []TokenConfig{{ID: "a", Role: "read", SHA256: strings.Repeat("g", 64)}} }, "64 hex"},
		{"bad id", func(c *Config) { c.Tokens = []TokenConfig{{ID: "a b", Role: "read", SHA256: tok.SHA256}} }, "token id"},
		{"duplicate id", func(c *Config) { c.Tokens = []TokenConfig{tok, tok} }, "given twice"},
		{"bad env id", func(c *Config) { c.TokenEnvID = "" }, "token_env_id"},
		{"no env, no env id", func(c *Config) { c.TokenEnv, c.TokenEnvID = "", "" }, ""},
		{"bad origin", func(c *Config) { c.AllowedOrigins = []string{"example.com"} }, "allowed origin"},
		{"origin", func(c *Config) { c.AllowedOrigins = []string{"https://ops.example.com"} }, ""},
		{"body", func(c *Config) { c.MaxBodyBytes = 0 }, "max_body_bytes"},
		{"header timeout", func(c *Config) { c.ReadHeaderTimeout = 0 }, "read_header_timeout"},
		{"shutdown", func(c *Config) { c.ShutdownTimeout = 0 }, "shutdown_timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mut(&c)
			err := c.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Validate: got %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range []Role{RolePublic, RoleRead, RoleAdmin} {
		got, err := ParseRole(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRole(%q): got %v, %v; want %v", r.String(), got, err, r)
		}
	}
	if _, err := ParseRole("Admin"); err == nil {
		t.Error(`ParseRole("Admin"): got nil, want an error`)
	}
}
