package admin

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Config is the admin listener and who may use it.
type Config struct {
	// Addr is the listen address. Default "127.0.0.1:9464" (loopback: the
	// admin port is for operators, not the internet). Empty disables the
	// listener: Run then waits for its context and serves nothing.
	Addr string `yaml:"addr"`

	// Tokens are bearer tokens given by the SHA-256 of their secret, for
	// configs that must not hold secrets. Default none.
	Tokens []TokenConfig `yaml:"tokens"`
	// TokensFile is a file of tokens, one "id role secret" per line (see
	// ParseTokensFile); the secret may be given as "sha256:<hex>". Read
	// once, by New. Default "" (none). It should be readable only by the
	// service's user; New logs a warning when others may read it.
	TokensFile string `yaml:"tokens_file"`
	// TokenEnv names an environment variable whose value, when set, is
	// the secret of one admin-role token with id TokenEnvID. Default
	// "LOOPGATE_ADMIN_TOKEN"; empty: no token from the environment.
	TokenEnv string `yaml:"token_env"`
	// TokenEnvID is the id (the audit log's "who") of the token from
	// TokenEnv. Default "env".
	TokenEnvID string `yaml:"token_env_id"`

	// PublicMetrics serves GET /metrics without a token, for a Prometheus
	// that scrapes without credentials. Default false: /metrics needs a
	// read token (Prometheus sends one with authorization.credentials or
	// bearer_token_file), because metrics name customers, orchestrators and
	// models.
	PublicMetrics bool `yaml:"public_metrics"`

	// AllowedOrigins are origins ("https://ops.example.com"), besides the
	// admin port's own, whose pages may call protected routes and send
	// mutations (any method but GET, HEAD and OPTIONS): for a console
	// reached through a proxy that changes the Host header. The server
	// sends no CORS headers. Default none.
	AllowedOrigins []string `yaml:"allowed_origins"`

	// MaxBodyBytes caps a request body. Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ReadHeaderTimeout bounds reading a request's headers. Default 10 s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ShutdownTimeout bounds the graceful shutdown when Run's context
	// ends; connections still open then are closed. Default 15 s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// TokenConfig is one token given by its hash.
type TokenConfig struct {
	// ID names the token in logs and the audit log: letters, digits, '.',
	// '_' and '-', at most 64 bytes.
	ID string `yaml:"id"`
	// Role is "read" or "admin".
	Role string `yaml:"role"`
	// SHA256 is the lower- or upper-case hex SHA-256 of the secret (see
	// HashSecret and GenerateToken).
	SHA256 string `yaml:"sha256"`
}

// DefaultTokenEnv is the default Config.TokenEnv.
const DefaultTokenEnv = "LOOPGATE_ADMIN_TOKEN"

// DefaultConfig returns the defaults written on each field.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:9464",
		TokenEnv:          DefaultTokenEnv,
		TokenEnvID:        "env",
		MaxBodyBytes:      1 << 20,
		ReadHeaderTimeout: 10 * time.Second,
		ShutdownTimeout:   15 * time.Second,
	}
}

// Validate reports the first invalid field. It does not read TokensFile
// or the environment; New does.
func (c Config) Validate() error {
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			return fmt.Errorf("admin addr %q: %w", c.Addr, err)
		}
	}
	seen := map[string]bool{}
	for i, t := range c.Tokens {
		if _, err := t.token(); err != nil {
			return fmt.Errorf("admin token %d: %w", i+1, err)
		}
		if seen[t.ID] {
			return fmt.Errorf("admin token %d: id %q given twice", i+1, t.ID)
		}
		seen[t.ID] = true
	}
	if c.TokenEnv != "" {
		if err := validID(c.TokenEnvID); err != nil {
			return fmt.Errorf("admin token_env_id: %w", err)
		}
	}
	cop := http.NewCrossOriginProtection()
	for _, o := range c.AllowedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return fmt.Errorf("admin allowed origin: %w", err)
		}
	}
	switch {
	case c.MaxBodyBytes <= 0:
		return errors.New("admin max_body_bytes: want > 0")
	case c.ReadHeaderTimeout <= 0:
		return errors.New("admin read_header_timeout: want > 0")
	case c.ShutdownTimeout <= 0:
		return errors.New("admin shutdown_timeout: want > 0")
	}
	return nil
}

// token converts a TokenConfig; errors never contain the hash.
func (t TokenConfig) token() (token, error) {
	if err := validID(t.ID); err != nil {
		return token{}, err
	}
	role, err := ParseRole(t.Role)
	if err != nil || role == RolePublic {
		return token{}, fmt.Errorf("token %q: role: want read or admin", t.ID)
	}
	tok := token{id: t.ID, role: role}
	if len(t.SHA256) != 2*len(tok.hash) {
		return token{}, fmt.Errorf("token %q: sha256: want 64 hex digits", t.ID)
	}
	if _, err := hex.Decode(tok.hash[:], []byte(t.SHA256)); err != nil {
		return token{}, fmt.Errorf("token %q: sha256: want 64 hex digits", t.ID)
	}
	return tok, nil
}

// validID checks a token id: safe to log, to put in an audit row and to
// show in the console.
func validID(id string) error {
	if id == "" || len(id) > 64 {
		return errors.New("token id: want 1 to 64 characters")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return errors.New("token id: want letters, digits, '.', '_' or '-'")
		}
	}
	return nil
}
