package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestKeyAPIThroughDev: a key created on dev's admin port authenticates
// on the router at once, is in the warehouse for the other routers and
// the next start, is audited, and is refused once revoked.
func TestKeyAPIThroughDev(t *testing.T) {
	d := newDevSurface(t)
	post := func(target, body string) (int, string) {
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+d.adm)
		rec := httptest.NewRecorder()
		d.h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	code, body := post("/keys", `{"id":"acme-api","customer":"acme","limits":{"requests_per_second":2}}`)
	if code != http.StatusCreated {
		t.Fatalf("create: got %d %s", code, body)
	}
	var c struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal([]byte(body), &c); err != nil || c.Key == "" {
		t.Fatalf("got %s, want the secret", body)
	}
	llm := func() int {
		req := httptest.NewRequest(http.MethodPost, "/llm", strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"x"}]}`))
		req.Header.Set("Authorization", "Bearer "+c.Key)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		d.rsvc.r.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	// The one orchestrator is unreachable: an authenticated request is
	// routed and fails upstream (502/503), an unknown key is 403.
	if got := llm(); got == http.StatusForbidden || got == http.StatusUnauthorized {
		t.Fatalf("got %d with the created key, want it accepted", got)
	}
	stored, err := d.store.APIKeys(context.Background())
	if err != nil || len(stored) != 1 || stored[0].ID != "acme-api" || strings.Contains(stored[0].SHA256, c.Key) {
		t.Fatalf("got stored keys %+v (%v), want acme-api by hash", stored, err)
	}
	rows, err := d.store.Query(context.Background(), "SELECT actor, action, position(detail, '"+c.Key+"') FROM "+d.store.Database()+".audit WHERE action LIKE 'key.%'")
	if err != nil || rows.Len() != 1 || rows.Values[0][0] != "ops" || rows.Values[0][1] != "key.create" || fmt.Sprint(rows.Values[0][2]) != "0" {
		t.Fatalf("got audit rows %v (%v), want key.create by ops, without the secret", rows.Values, err)
	}
	if code, body := post("/keys/acme-api/revoke", ""); code != http.StatusOK {
		t.Fatalf("revoke: got %d %s", code, body)
	}
	if got := llm(); got != http.StatusForbidden {
		t.Fatalf("got %d with the revoked key, want 403", got)
	}
}
