package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// AuditRecord is one change made through the admin surface.
type AuditRecord struct {
	Time   time.Time // when the change was accepted
	Actor  string    // the token id that asked for it (TokenID)
	Action string    // what, e.g. "config.lambda"
	Old    string    // the value before, as JSON
	New    string    // the value after, as JSON
}

// Auditor stores audit records. WriteAudit returns nil only when the
// record is durable: a change is applied only after that.
type Auditor interface {
	WriteAudit(ctx context.Context, rec AuditRecord) error
}

// ErrAuditUnavailable is wrapped by Audit's errors: the record was not
// written, so the change must not be applied.
var ErrAuditUnavailable = errors.New("audit record not written")

// request is what the admin server knows about an authenticated request,
// kept in its context for TokenID and Audit.
type request struct {
	tokenID string
	role    Role
	srv     *Server
}

type requestKey struct{}

// TokenID returns the id of the token that authenticated the request
// whose context ctx is, and "" for a public route or a context that did
// not come through the admin server.
func TokenID(ctx context.Context) string {
	if rq, ok := ctx.Value(requestKey{}).(*request); ok {
		return rq.tokenID
	}
	return ""
}

// Audit writes the audit record of a change about to be made by the
// request whose context ctx is: who (TokenID), action, and the old and new
// values (marshalled to JSON). A mutation handler calls it after it has
// validated the change and before it applies it, and applies the change
// only on nil:
//
//	v, err := parseLambda(r)            // validate first: 400, nothing audited
//	...
//	if err := admin.Audit(r.Context(), "config.lambda", opt.Lambda(), v); err != nil {
//		admin.WriteError(w, http.StatusServiceUnavailable, "λ not changed: its audit record could not be written")
//		return
//	}
//	opt.SetLambda(v)                    // applied only once audited
//
// AuditOrRefuse does the 503 for it. An error wraps ErrAuditUnavailable:
// when the server has no Auditor, when ctx did not come through the admin
// server (so no one is known to have asked), or when WriteAudit fails.
func Audit(ctx context.Context, action string, old, new any) error {
	rq, ok := ctx.Value(requestKey{}).(*request)
	if !ok || rq.tokenID == "" {
		return fmt.Errorf("%w: %s: no authenticated admin request", ErrAuditUnavailable, action)
	}
	if rq.srv.auditor == nil {
		return fmt.Errorf("%w: %s: no audit log configured", ErrAuditUnavailable, action)
	}
	oldJS, err := json.Marshal(old)
	if err != nil {
		return fmt.Errorf("%w: %s: encode old value: %w", ErrAuditUnavailable, action, err)
	}
	newJS, err := json.Marshal(new)
	if err != nil {
		return fmt.Errorf("%w: %s: encode new value: %w", ErrAuditUnavailable, action, err)
	}
	rec := AuditRecord{Time: rq.srv.now(), Actor: rq.tokenID, Action: action, Old: string(oldJS), New: string(newJS)}
	if err := rq.srv.auditor.WriteAudit(ctx, rec); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrAuditUnavailable, action, err)
	}
	return nil
}

// AuditOrRefuse is Audit for a handler: on failure it answers 503 with a
// JSON error, counts the refusal (reason "audit"), logs the cause and
// returns false; the handler then returns without applying the change.
func AuditOrRefuse(w http.ResponseWriter, r *http.Request, action string, old, new any) bool {
	err := Audit(r.Context(), action, old, new)
	if err == nil {
		return true
	}
	if rq, ok := r.Context().Value(requestKey{}).(*request); ok {
		rq.srv.refused.WithLabelValues(reasonAudit).Inc()
		rq.srv.log.Error("admin change refused", slog.String(keyReason, reasonAudit), slog.String(keyAction, action), slog.String(keyToken, rq.tokenID), slog.Any(keyErr, err))
	}
	WriteError(w, http.StatusServiceUnavailable, action+" not applied: its audit record could not be written")
	return false
}
