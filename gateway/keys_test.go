package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/loopgate/loopgate/admin"
	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
)

// memStore is a KeyStore in memory, newest version per id.
type memStore struct {
	mu       sync.Mutex
	versions map[string]int64
	keys     map[string]event.APIKey
	writes   int
}

func (s *memStore) WriteAPIKey(_ context.Context, k event.APIKey, v int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys, s.versions = map[string]event.APIKey{}, map[string]int64{}
	}
	s.writes++
	if v >= s.versions[k.ID] {
		s.keys[k.ID], s.versions[k.ID] = k, v
	}
	return nil
}

func (s *memStore) APIKeys(context.Context) ([]event.APIKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sorted(s.keys), nil
}

// sinkOf records what a router would accept.
type sinkOf struct {
	mu   sync.Mutex
	keys []event.APIKey
}

func (s *sinkOf) ValidateAPIKeys(ks []event.APIKey) error {
	for _, k := range ks {
		if k.ID == "configured" {
			return errConfigured
		}
	}
	return nil
}

var errConfigured = &Refusal{msg: "api key \"configured\" is a configured key"}

func (s *sinkOf) SetAPIKeys(ks []event.APIKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = ks
	return nil
}

func (s *sinkOf) hashOf(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.keys {
		if k.ID == id && k.RevokedMs == 0 {
			return k.SHA256, true
		}
	}
	return "", false
}

type auditLog struct {
	mu   sync.Mutex
	recs []admin.AuditRecord
}

func (a *auditLog) WriteAudit(_ context.Context, r admin.AuditRecord) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs = append(a.recs, r)
	return nil
}

type counting struct{ n byte }

func (c *counting) Read(p []byte) (int, error) {
	for i := range p {
		c.n++
		p[i] = c.n
	}
	return len(p), nil
}

func TestKeyAPI(t *testing.T) {
	store, sink, audits := &memStore{}, &sinkOf{}, &auditLog{}
	clk := &clock{t: newFixture(t, DefaultConfig()).clk.t}
	keys, err := NewKeys(store, sink, &counting{}, 1, deps.Deps{Clock: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	secret, hash, _ := admin.GenerateToken(&counting{n: 100})
	acfg := admin.DefaultConfig()
	acfg.Tokens = []admin.TokenConfig{{ID: "ops", Role: "admin", SHA256: hash}}
	srv, err := admin.New(acfg, admin.Hooks{Auditor: audits}, deps.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	h := keys.Handler()
	srv.Handle("GET /keys", admin.RoleRead, h)
	srv.Handle("POST /keys", admin.RoleAdmin, h)
	srv.Handle("POST /keys/{id}/revoke", admin.RoleAdmin, h)
	srv.Handle("POST /keys/{id}/rotate", admin.RoleAdmin, h)
	do := func(method, path, body string) (int, []byte) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		return rec.Code, rec.Body.Bytes()
	}

	code, b := do("POST", "/keys", `{"id":"acme-1","customer":"acme","capabilities":["llm"],"limits":{"requests_per_second":5}}`)
	if code != 201 {
		t.Fatalf("create: got %d %s", code, b)
	}
	var c created
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte(c.Key))
	if !strings.HasPrefix(c.Key, "lg_") || c.APIKey.SHA256 != hex.EncodeToString(d[:]) || c.APIKey.Limits.RequestsPerSecond != 5 {
		t.Fatalf("got %+v, want a secret whose SHA-256 the record holds", c)
	}
	if got, ok := sink.hashOf("acme-1"); !ok || got != c.APIKey.SHA256 {
		t.Fatal("the created key was not applied to the router")
	}
	// The secret is answered once: the store, the listing and the audit log never hold it.
	stored, _ := store.APIKeys(context.Background())
	_, list := do("GET", "/keys", "")
	for what, v := range map[string][]byte{"store": mustJSON(t, stored), "list": list, "audit": mustJSON(t, audits.recs)} {
		if bytes.Contains(v, []byte(c.Key)) {
			t.Errorf("the %s holds the key's secret", what)
		}
	}
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"duplicate id", `{"id":"acme-1"}`, 409},
		{"hash given", `{"id":"x","sha256":"` + strings.Repeat("a", 64) + `"}`, 400},
		{"bad limit", `{"id":"x","limits":{"concurrency":-1}}`, 400},
		{"unknown field", `{"id":"x","secret":"y"}`, 400},
		{"router refuses", `{"id":"configured"}`, 400},
	} {
		if code, b := do("POST", "/keys", tc.body); code != tc.want {
			t.Errorf("%s: got %d %s, want %d", tc.name, code, b, tc.want)
		}
	}

	code, b = do("POST", "/keys/acme-1/rotate", `{"new_id":"acme-2","revoke_old":true}`)
	if code != 201 {
		t.Fatalf("rotate: got %d %s", code, b)
	}
	var r created
	_ = json.Unmarshal(b, &r)
	if r.Key == c.Key || r.APIKey.ID != "acme-2" || r.APIKey.Customer != "acme" || len(r.APIKey.Capabilities) != 1 || r.APIKey.Limits.RequestsPerSecond != 5 {
		t.Fatalf("got successor %+v, want a new secret with the same customer, scope and limits", r)
	}
	if _, ok := sink.hashOf("acme-1"); ok {
		t.Error("the rotated key is still live with revoke_old")
	}
	if _, ok := sink.hashOf("acme-2"); !ok {
		t.Error("the successor is not live")
	}
	if code, _ := do("POST", "/keys/acme-2/revoke", ""); code != 200 {
		t.Fatalf("revoke: got %d", code)
	}
	if _, ok := sink.hashOf("acme-2"); ok {
		t.Error("revoked key still live")
	}
	if code, _ := do("POST", "/keys/nope/revoke", ""); code != 404 {
		t.Errorf("revoke of an unknown key: got %d, want 404", code)
	}

	var actions []string
	for _, rec := range audits.recs {
		actions = append(actions, rec.Action+":"+rec.Actor)
	}
	if want := "key.create:ops key.rotate:ops key.revoke:ops key.revoke:ops"; strings.Join(actions, " ") != want {
		t.Errorf("got audit %v, want %s", actions, want)
	}

	// Another router loads what this one stored: a key survives restarts and reaches the others.
	other := &sinkOf{}
	k2, _ := NewKeys(store, other, &counting{}, 1, deps.Deps{})
	if err := k2.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(other.keys) != 2 {
		t.Fatalf("got %d keys on the other router, want acme-1 and acme-2 (both revoked)", len(other.keys))
	}
	for _, k := range other.keys {
		if k.RevokedMs == 0 {
			t.Errorf("key %s live on the other router, want revoked", k.ID)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
