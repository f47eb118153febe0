package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"

	"github.com/loopgate/loopgate/admin"
	"github.com/loopgate/loopgate/deps"
)

// printAuditor stands in for the warehouse's audit table.
type printAuditor struct{}

func (printAuditor) WriteAudit(_ context.Context, r admin.AuditRecord) error {
	fmt.Printf("audit: %s %s %s -> %s\n", r.Actor, r.Action, r.Old, r.New)
	return nil
}

// A command wires its endpoints behind roles; a mutation validates, audits,
// then applies.
func Example() {
	secret, hash, _ := admin.GenerateToken(zeroReader{}) // crypto/rand.Reader in a command
	cfg := admin.DefaultConfig()
	cfg.Tokens = []admin.TokenConfig{{ID: "dev", Role: "admin", SHA256: hash}}
	srv, err := admin.New(cfg, admin.Hooks{Auditor: printAuditor{}}, deps.Deps{})
	if err != nil {
		panic(err)
	}
	lambda := 0.5
	srv.Handle("GET /lambda", admin.RoleRead, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		admin.WriteJSON(w, http.StatusOK, map[string]float64{"lambda": lambda})
	}))
	srv.Handle("POST /lambda", admin.RoleAdmin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := strconv.ParseFloat(r.URL.Query().Get("lambda"), 64)
		if err != nil || v < 0 || v > 1 {
			admin.WriteError(w, http.StatusBadRequest, "want ?lambda= a number in [0, 1]")
			return
		}
		if !admin.AuditOrRefuse(w, r, "config.lambda", lambda, v) {
			return
		}
		lambda = v
		admin.WriteJSON(w, http.StatusOK, map[string]float64{"lambda": v})
	}))

	for _, auth := range []string{"", "Bearer " + secret} {
		req := httptest.NewRequest("POST", "/lambda?lambda=0.2", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	// Output:
	// 401 {"error":{"message":"a bearer token is required: Authorization: Bearer <token>"}}
	// audit: dev config.lambda 0.5 -> 0.2
	// 200 {"lambda":0.2}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }
