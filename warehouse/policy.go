package warehouse

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/loopgate/loopgate/event"
)

// ErrNotFound is returned when a requested record is not stored.
var ErrNotFound = errors.New("not found")

// WritePolicy stores p in the policies table, once per version: a version
// already stored (a replay of the compacted policy topic) is skipped, so
// the write is idempotent like WriteOutcomes. encoded is p's encoding as
// the optimizer published it (event.EncodePolicy); the table keeps those
// bytes, so what analysts read is what the routers applied.
func (s *Store) WritePolicy(ctx context.Context, p event.Policy, encoded []byte) error {
	if len(encoded) == 0 {
		return fmt.Errorf("write policy %d: no encoding", p.Version)
	}
	js := encoded
	rows, err := s.b.query(ctx, fmt.Sprintf("SELECT count() FROM %s.policies WHERE version = %d", s.cfg.Database, p.Version))
	if err != nil {
		s.m.errors.WithLabelValues("check").Inc()
		return fmt.Errorf("check existing policy %d: %w", p.Version, err)
	}
	if rows.Len() == 1 && rows.Values[0][0] != uint64(0) {
		s.m.dupsSkipped.WithLabelValues("policies", "warehouse").Inc()
		return nil
	}
	b := &block{table: "policies", rows: 1, cols: []column{
		{"version", []uint64{p.Version}},
		{"created_ms", []int64{p.CreatedMs}},
		{"lambda", []float64{p.Lambda}},
		{"window_s", []uint32{clampU32(int64(p.WindowS))}},
		{"producer", []string{p.Producer}},
		{"classes", []uint32{uint32(len(p.Classes))}},
		{"ejections", []uint32{uint32(len(p.Ejections))}},
		{"policy", []string{string(js)}},
	}}
	h := fnv.New64a()
	h.Write(js)
	return s.insert(ctx, b, s.dedupToken(fmt.Sprintf("policy-%d", p.Version), "policies", 1, h.Sum64()))
}

// Policy returns the stored policy with the given version, or the newest
// one for version 0. The error wraps ErrNotFound when there is none.
func (s *Store) Policy(ctx context.Context, version uint64) (event.Policy, error) {
	where := ""
	if version > 0 {
		where = fmt.Sprintf("WHERE version = %d ", version)
	}
	rows, err := s.Query(ctx, fmt.Sprintf("SELECT policy FROM %s.policies %sORDER BY version DESC, written_at DESC LIMIT 1", s.cfg.Database, where))
	if err != nil {
		return event.Policy{}, err
	}
	if rows.Len() == 0 {
		return event.Policy{}, fmt.Errorf("read policy %d: %w", version, ErrNotFound)
	}
	js, _ := rows.Values[0][0].(string)
	p, err := event.DecodePolicy([]byte(js))
	if err != nil {
		return event.Policy{}, fmt.Errorf("decode stored policy %d: %w", version, err)
	}
	return p, nil
}

// AuditEntry is one operator or system action.
type AuditEntry struct {
	Time   time.Time // when it happened; zero means now
	Actor  string    // who: an operator name, "optimizer", an API key id
	Action string    // what, e.g. "policy.publish", "config.lambda"; required
	Detail string    // free text or JSON
}

// WriteAudit appends e to the audit table. Unlike outcomes, audit entries
// have no identity, so a retried WriteAudit may store an entry twice.
func (s *Store) WriteAudit(ctx context.Context, e AuditEntry) error {
	if e.Action == "" {
		return errors.New("write audit entry: action is required")
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	b := &block{table: "audit", rows: 1, cols: []column{
		{"time_ms", []int64{e.Time.UnixMilli()}},
		{"actor", []string{e.Actor}},
		{"action", []string{e.Action}},
		{"detail", []string{e.Detail}},
	}}
	return s.insert(ctx, b, "")
}
