package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/loopgate/loopgate/admin"
	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
)

// KeyStore keeps the keys made through the admin API, durable and shared
// by every router (warehouse.Store is one: its api_keys table).
// WriteAPIKey returns nil only when the version is stored.
type KeyStore interface {
	WriteAPIKey(ctx context.Context, k event.APIKey, versionMs int64) error
	APIKeys(ctx context.Context) ([]event.APIKey, error)
}

// KeySink takes the API-made keys: the router (router.Router) accepts
// them beside its configured keys.
type KeySink interface {
	ValidateAPIKeys(keys []event.APIKey) error
	SetAPIKeys(keys []event.APIKey) error
}

// Keys is the admin API for keys: create, revoke, rotate and list, on the
// router's admin server. A created key's secret is answered once and never
// stored or logged: the store keeps its SHA-256. Every change is audited
// (admin.AuditOrRefuse, with the record minus nothing secret), written to
// the store, then applied to this router; the other routers read the
// store every KeySyncInterval (Run), so a key reaches them, and a
// revocation takes effect there, within that interval.
type Keys struct {
	store   KeyStore
	sink    KeySink
	secrets io.Reader // crypto/rand in production
	now     func() time.Time
	log     *slog.Logger
	every   time.Duration

	mu      sync.Mutex // serialises changes
	keys    map[string]event.APIKey
	version int64 // the last version written, Unix ms; versions only grow
}

// nextVersion is the version of the next write: the clock, but always
// after the last one, so two changes in one millisecond stay ordered. mu held.
func (k *Keys) nextVersion() int64 {
	k.version = max(k.now().UnixMilli(), k.version+1)
	return k.version
}

// NewKeys returns the key API over store, applying keys to sink. secrets
// is the source of key secrets: crypto/rand.Reader in production.
func NewKeys(store KeyStore, sink KeySink, secrets io.Reader, every time.Duration, d deps.Deps) (*Keys, error) {
	if store == nil || sink == nil || secrets == nil || every <= 0 {
		return nil, errors.New("gateway keys: store, sink, secret source and a positive interval are required")
	}
	return &Keys{store: store, sink: sink, secrets: secrets, now: d.Now, log: d.Log(), every: every, keys: map[string]event.APIKey{}}, nil
}

// Load reads every stored key and applies them. Call it before serving.
func (k *Keys) Load(ctx context.Context) error {
	ks, err := k.store.APIKeys(ctx)
	if err != nil {
		return fmt.Errorf("load api keys: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	next := make(map[string]event.APIKey, len(ks))
	for _, key := range ks {
		next[key.ID] = key
	}
	if err := k.sink.SetAPIKeys(sorted(next)); err != nil {
		return fmt.Errorf("apply api keys: %w", err)
	}
	k.keys = next
	return nil
}

// Run reloads the stored keys every interval until ctx ends (it returns
// nil then); a failed read is logged and tried again.
func (k *Keys) Run(ctx context.Context) error {
	t := time.NewTicker(k.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := k.Load(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("api keys not reloaded", logKeyErr, err)
		}
	}
}

func sorted(m map[string]event.APIKey) []event.APIKey {
	out := make([]event.APIKey, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b event.APIKey) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// newSecret is "lg_" + 32 random bytes, base64url.
func (k *Keys) newSecret() (secret, hash string, err error) {
	var b [32]byte
	if _, err := io.ReadFull(k.secrets, b[:]); err != nil {
		return "", "", fmt.Errorf("generate key secret: %w", err)
	}
	secret = "lg_" + base64.RawURLEncoding.EncodeToString(b[:])
	d := sha256.Sum256([]byte(secret))
	return secret, hex.EncodeToString(d[:]), nil
}

// change validates next as the new version of a key, audits it (the
// caller's request), stores it and applies it. mu held.
func (k *Keys) change(w http.ResponseWriter, r *http.Request, action string, old *event.APIKey, next event.APIKey) bool {
	if err := ValidateKey(next); err != nil {
		admin.WriteError(w, http.StatusBadRequest, err.Error())
		return false
	}
	all := maps(k.keys)
	all[next.ID] = next
	if err := k.sink.ValidateAPIKeys(sorted(all)); err != nil {
		admin.WriteError(w, http.StatusBadRequest, err.Error())
		return false
	}
	var oldView any
	if old != nil {
		oldView = old
	}
	if !admin.AuditOrRefuse(w, r, action, oldView, next) {
		return false
	}
	if err := k.store.WriteAPIKey(r.Context(), next, k.nextVersion()); err != nil {
		k.log.Error("api key not stored", logKeyID, next.ID, logKeyErr, err)
		admin.WriteError(w, http.StatusServiceUnavailable, action+" not applied: the key could not be stored")
		return false
	}
	if err := k.sink.SetAPIKeys(sorted(all)); err != nil { // validated above; cannot fail but for a race with Reload
		admin.WriteError(w, http.StatusConflict, err.Error())
		return false
	}
	k.keys = all
	k.log.Info("api key changed", logKeyID, next.ID, "action", action)
	return true
}

func maps(m map[string]event.APIKey) map[string]event.APIKey {
	out := make(map[string]event.APIKey, len(m)+1)
	for id, v := range m {
		out[id] = v
	}
	return out
}

// maxKeyBody bounds a request body of the key API.
const maxKeyBody = 64 << 10

// created is the answer to a create or a rotate: the secret, once.
type created struct {
	Key    string       `json:"key"`
	APIKey event.APIKey `json:"api_key"`
}

// Handler serves the key API, to mount on the admin server:
//
//	GET  /keys              (read)  the API-made keys, without secrets
//	POST /keys              (admin) create: body an event.APIKey without sha256; answers 201 {"key": secret, "api_key": record}
//	POST /keys/{id}/revoke  (admin) revoke: the key is refused from then on
//	POST /keys/{id}/rotate  (admin) a successor with the same customer, scope, limits and budgets:
//	                                body {"new_id": "...", "revoke_old": true}; answers 201 like create
func (k *Keys) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /keys", k.list)
	mux.HandleFunc("POST /keys", k.create)
	mux.HandleFunc("POST /keys/{id}/revoke", k.revoke)
	mux.HandleFunc("POST /keys/{id}/rotate", k.rotate)
	return mux
}

func (k *Keys) list(w http.ResponseWriter, _ *http.Request) {
	k.mu.Lock()
	ks := sorted(k.keys)
	k.mu.Unlock()
	admin.WriteJSON(w, http.StatusOK, map[string]any{"keys": ks})
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxKeyBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("invalid JSON body: %w", err)
	}
	return nil
}

func (k *Keys) create(w http.ResponseWriter, r *http.Request) {
	var spec event.APIKey
	if err := decodeBody(r, &spec); err != nil {
		admin.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if spec.SHA256 != "" || spec.CreatedMs != 0 || spec.RevokedMs != 0 {
		admin.WriteError(w, http.StatusBadRequest, "sha256, created_ms and revoked_ms are set by the server")
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.keys[spec.ID]; ok {
		admin.WriteError(w, http.StatusConflict, "api key "+strconv.Quote(spec.ID)+" exists")
		return
	}
	k.issue(w, r, "key.create", nil, spec)
}

// issue gives spec a new secret and makes it a key. mu held.
func (k *Keys) issue(w http.ResponseWriter, r *http.Request, action string, old *event.APIKey, spec event.APIKey) bool {
	secret, hash, err := k.newSecret()
	if err != nil {
		admin.WriteError(w, http.StatusInternalServerError, "could not generate a key")
		return false
	}
	spec.SHA256, spec.CreatedMs, spec.RevokedMs = hash, k.now().UnixMilli(), 0
	if !k.change(w, r, action, old, spec) {
		return false
	}
	admin.WriteJSON(w, http.StatusCreated, created{Key: secret, APIKey: spec})
	return true
}

func (k *Keys) revoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	k.mu.Lock()
	defer k.mu.Unlock()
	old, ok := k.keys[id]
	if !ok {
		admin.WriteError(w, http.StatusNotFound, "no API-made key "+strconv.Quote(id)+" (configured keys are revoked in the config)")
		return
	}
	if old.RevokedMs != 0 {
		admin.WriteJSON(w, http.StatusOK, map[string]any{"api_key": old}) // already revoked: nothing changes
		return
	}
	next := old
	next.RevokedMs = k.now().UnixMilli()
	if k.change(w, r, "key.revoke", &old, next) {
		admin.WriteJSON(w, http.StatusOK, map[string]any{"api_key": next})
	}
}

func (k *Keys) rotate(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var body struct {
		NewID     string `json:"new_id"`
		RevokeOld bool   `json:"revoke_old"`
	}
	if err := decodeBody(r, &body); err != nil {
		admin.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	old, ok := k.keys[id]
	if !ok || old.RevokedMs != 0 {
		admin.WriteError(w, http.StatusNotFound, "no live API-made key "+strconv.Quote(id))
		return
	}
	if body.NewID == "" {
		body.NewID = id + "." + strconv.FormatInt(k.now().Unix(), 10)
	}
	if _, ok := k.keys[body.NewID]; ok {
		admin.WriteError(w, http.StatusConflict, "api key "+strconv.Quote(body.NewID)+" exists")
		return
	}
	succ := old
	succ.ID = body.NewID
	if !k.issue(w, r, "key.rotate", &old, succ) {
		return
	}
	if body.RevokeOld {
		next := old
		next.RevokedMs = k.now().UnixMilli()
		// The successor is answered already; a failure here leaves the old
		// key live, which the operator sees in GET /keys and can retry.
		if err := k.revokeQuiet(r, old, next); err != nil {
			k.log.Error("rotated key's predecessor not revoked", logKeyID, old.ID, logKeyErr, err)
		}
	}
}

// revokeQuiet revokes old after a rotation, without writing a response. mu held.
func (k *Keys) revokeQuiet(r *http.Request, old, next event.APIKey) error {
	all := maps(k.keys)
	all[next.ID] = next
	if err := admin.Audit(r.Context(), "key.revoke", old, next); err != nil {
		return err
	}
	if err := k.store.WriteAPIKey(r.Context(), next, k.nextVersion()); err != nil {
		return err
	}
	if err := k.sink.SetAPIKeys(sorted(all)); err != nil {
		return err
	}
	k.keys = all
	return nil
}
