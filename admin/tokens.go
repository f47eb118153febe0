package admin

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Role is what a token may do. Roles are ordered: an admin token may do
// everything a read token may.
type Role int

const (
	// RolePublic marks a route that needs no token: /healthz, /readyz,
	// /metrics with Config.PublicMetrics, and static assets such as the
	// console's page (which then asks for a token). Never data.
	RolePublic Role = iota
	// RoleRead may read: policy, orchestrators, frontier, read-only SQL,
	// metrics.
	RoleRead
	// RoleAdmin may also change state: λ, config reload, keys, policies.
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RolePublic:
		return "public"
	case RoleRead:
		return "read"
	case RoleAdmin:
		return "admin"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ParseRole reads "read" or "admin" (and "public").
func ParseRole(s string) (Role, error) {
	switch s {
	case "public":
		return RolePublic, nil
	case "read":
		return RoleRead, nil
	case "admin":
		return RoleAdmin, nil
	}
	return 0, errors.New("role: want read or admin")
}

// minSecretLen is the shortest secret accepted from a file or the
// environment: a token is a password that is never typed, so it can be
// long.
const minSecretLen = 16

// token is one accepted bearer token. Only the hash of its secret is kept.
type token struct {
	id   string
	role Role
	hash [sha256.Size]byte
}

// tokenSet finds the token a request presents.
type tokenSet struct {
	tokens []token
	// compare is subtle.ConstantTimeCompare; tests count its calls.
	compare func(a, b []byte) int
}

func newTokenSet(tokens []token) *tokenSet {
	return &tokenSet{tokens: tokens, compare: subtle.ConstantTimeCompare}
}

// lookup hashes secret and compares the hash with every token's, in
// constant time and without stopping at a match, so neither the timing
// nor the number of comparisons tells how much of a guess was right or
// which token matched. (Hashing first also makes the comparison's length
// fixed.)
func (s *tokenSet) lookup(secret string) (token, bool) {
	h := sha256.Sum256([]byte(secret))
	match := -1
	for i := range s.tokens {
		eq := s.compare(h[:], s.tokens[i].hash[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return token{}, false
	}
	return s.tokens[match], true
}

// HashSecret returns the hex SHA-256 of a token secret, the form
// Config.Tokens and "sha256:" entries of a tokens file take.
func HashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// secretPrefix starts every generated secret, so a leaked one is easy to
// recognise (and to search for in logs and repositories).
const secretPrefix = "lgadm_"

// GenerateToken returns a new secret (32 bytes from rand, printable) and
// its HashSecret. `make run` uses it for the dev token it prints; pass
// crypto/rand.Reader.
func GenerateToken(rand io.Reader) (secret, hash string, err error) {
	var b [32]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", "", fmt.Errorf("read random bytes for a token: %w", err)
	}
	secret = secretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, HashSecret(secret), nil
}

// fingerprint is a short, non-secret name of a presented secret for logs
// of refused requests: the first 8 hex digits of its SHA-256. It lets an
// operator tell one client's repeated failures from another's without the
// log holding anything that opens the door.
func fingerprint(secret string) string {
	return HashSecret(secret)[:8]
}

// ParseTokensFile reads a tokens file: one token per line as three fields
// separated by spaces or tabs,
//
//	# id      role   secret
//	grafana   read   lgadm_...
//	ops-alice admin  sha256:6b3a55e0261b0304143f805a24924d0c1c44524821305f31d9277843b8a10f4e
//
// where the secret is the token itself (at least 16 characters) or
// "sha256:" and its HashSecret. Blank lines and lines starting with '#'
// are skipped. Errors name the line, never its contents, so a secret in a
// misplaced column does not end up in a log.
func ParseTokensFile(data []byte) ([]TokenConfig, error) {
	var out []TokenConfig
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("tokens file line %d: want \"id role secret\", got %d fields", n, len(f))
		}
		if validID(f[0]) != nil {
			return nil, fmt.Errorf("tokens file line %d: id: want 1 to 64 letters, digits, '.', '_' or '-'", n)
		}
		if r, err := ParseRole(f[1]); err != nil || r == RolePublic {
			return nil, fmt.Errorf("tokens file line %d: role: want read or admin", n)
		}
		tc := TokenConfig{ID: f[0], Role: f[1]}
		if h, ok := strings.CutPrefix(f[2], "sha256:"); ok {
			tc.SHA256 = h
			if _, err := tc.token(); err != nil {
				return nil, fmt.Errorf("tokens file line %d: sha256: want 64 hex digits", n)
			}
		} else {
			if len(f[2]) < minSecretLen {
				return nil, fmt.Errorf("tokens file line %d: secret: want at least %d characters", n, minSecretLen)
			}
			tc.SHA256 = HashSecret(f[2])
		}
		if seen[tc.ID] {
			return nil, fmt.Errorf("tokens file line %d: id given twice", n)
		}
		seen[tc.ID] = true
		out = append(out, tc)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	return out, nil
}
