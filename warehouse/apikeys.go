package warehouse

import (
	"context"
	"fmt"

	"github.com/loopgate/loopgate/event"
)

// WriteAPIKey stores a new version of key k (made or changed through the
// admin API) at versionMs. It returns nil only when the row is stored.
func (s *Store) WriteAPIKey(ctx context.Context, k event.APIKey, versionMs int64) error {
	rec, err := event.EncodeAPIKey(k)
	if err != nil {
		return err
	}
	b := &block{table: "api_keys", rows: 1, cols: []column{
		{"id", []string{k.ID}},
		{"version_ms", []int64{versionMs}},
		{"record", []string{string(rec)}},
	}}
	if err := s.insert(ctx, b, ""); err != nil {
		return fmt.Errorf("write api key %s: %w", k.ID, err)
	}
	return nil
}

// APIKeys returns the newest version of every stored key, by id. A record
// that does not decode is an error: a key must not silently vanish.
func (s *Store) APIKeys(ctx context.Context) ([]event.APIKey, error) {
	rows, err := s.Query(ctx, fmt.Sprintf("SELECT id, argMax(record, version_ms) FROM %s.api_keys GROUP BY id ORDER BY id", s.cfg.Database))
	if err != nil {
		return nil, fmt.Errorf("read api keys: %w", err)
	}
	out := make([]event.APIKey, 0, rows.Len())
	for _, r := range rows.Values {
		k, err := event.DecodeAPIKey([]byte(str(r[1])))
		if err != nil {
			return nil, fmt.Errorf("api key %s: %w", str(r[0]), err)
		}
		out = append(out, k)
	}
	return out, nil
}
