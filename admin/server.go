package admin

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/internal/jsonconn"
)

// Hooks are what the admin server serves from the rest of the process.
type Hooks struct {
	// Gatherer is served at GET /metrics; nil: no /metrics route.
	Gatherer prometheus.Gatherer
	// Ready is GET /readyz's check; nil: always ready once serving.
	Ready func(ctx context.Context) error
	// Auditor stores the records of Audit; nil: every Audit fails, so
	// every audited change is refused.
	Auditor Auditor
	// Getenv reads Config.TokenEnv; nil: os.Getenv.
	Getenv func(string) string
	// ReadFile reads Config.TokensFile; nil: os.ReadFile.
	ReadFile func(name string) ([]byte, error)
}

// Route is one registered route.
type Route struct {
	Pattern string // as given to Handle, e.g. "POST /lambda"
	Role    Role
}

// Server is the admin HTTP server of one loopgate process. Create it with
// New, add routes with Handle, then Run it.
type Server struct {
	cfg     Config
	log     *slog.Logger
	tokens  *tokenSet
	cop     *http.CrossOriginProtection
	origins map[string]bool // Config.AllowedOrigins
	auditor Auditor
	now     func() time.Time
	refused *prometheus.CounterVec // reason
	mux     *http.ServeMux

	mu     sync.Mutex
	routes []Route
}

// Refusal reasons, the values of loopgate_admin_refused_total's reason.
const (
	reasonMissingToken = "missing_token" // no Authorization header (401)
	reasonInvalidToken = "invalid_token" // a token no one was given (401)
	reasonRole         = "role"          // a read token on an admin route (403)
	reasonCrossSite    = "cross_site"    // Sec-Fetch-Site: cross-site, or a mutation from another origin (403)
	reasonAudit        = "audit"         // a change whose audit record could not be written (503)
)

// Log keys.
const (
	keyReason = "reason"
	keyRemote = "remote"
	keyMethod = "method"
	keyPath   = "path"
	keyToken  = "token"       // a token id
	keyFinger = "fingerprint" // of a refused secret, see fingerprint
	keyAction = "action"
	keyErr    = "err"
	keyAddr   = "addr"
	keyCount  = "tokens"
	keyFile   = "file"
)

// New validates cfg, loads the tokens (Config.Tokens, TokensFile and
// TokenEnv) and returns a server with /healthz, /readyz and, when
// hooks.Gatherer is set, /metrics. A server with no tokens serves only its
// public routes; every other route answers 401.
func New(cfg Config, hooks Hooks, d deps.Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := d.Log()
	if hooks.Getenv == nil {
		hooks.Getenv = os.Getenv
	}
	if hooks.ReadFile == nil {
		hooks.ReadFile = os.ReadFile
	}
	tokens, err := loadTokens(cfg, hooks.Getenv, hooks.ReadFile, log)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		log:     log,
		tokens:  newTokenSet(tokens),
		cop:     http.NewCrossOriginProtection(),
		auditor: hooks.Auditor,
		now:     d.Now,
		mux:     http.NewServeMux(),
		origins: map[string]bool{},
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_admin_refused_total",
			Help: "Admin requests refused, by reason: missing_token, invalid_token, role, cross_site, audit.",
		}, []string{"reason"}),
	}
	for _, o := range cfg.AllowedOrigins {
		if err := s.cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("admin allowed origin: %w", err)
		}
		s.origins[o] = true
	}
	for _, r := range []string{reasonMissingToken, reasonInvalidToken, reasonRole, reasonCrossSite, reasonAudit} {
		s.refused.WithLabelValues(r)
	}
	if d.Registerer != nil {
		if err := d.Registerer.Register(s.refused); err != nil {
			return nil, fmt.Errorf("register admin metrics: %w", err)
		}
	}
	if len(tokens) == 0 {
		log.Warn("no admin tokens configured; every route but the public ones answers 401")
	} else {
		log.Info("admin tokens loaded", keyCount, len(tokens))
	}

	s.Handle("GET /healthz", RolePublic, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	s.Handle("GET /readyz", RolePublic, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hooks.Ready != nil {
			if err := hooks.Ready(r.Context()); err != nil {
				WriteError(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
				return
			}
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}))
	if hooks.Gatherer != nil {
		role := RoleRead
		if cfg.PublicMetrics {
			role = RolePublic
		}
		s.Handle("GET /metrics", role, promhttp.HandlerFor(hooks.Gatherer, promhttp.HandlerOpts{}))
	}
	return s, nil
}

// loadTokens collects the configured tokens. Secrets are hashed as soon as
// they are read and appear in no error.
func loadTokens(cfg Config, getenv func(string) string, readFile func(string) ([]byte, error), log *slog.Logger) ([]token, error) {
	tcs := slices.Clone(cfg.Tokens)
	if cfg.TokensFile != "" {
		data, err := readFile(cfg.TokensFile)
		if err != nil {
			return nil, fmt.Errorf("read admin tokens file: %w", err)
		}
		fromFile, err := ParseTokensFile(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.TokensFile, err)
		}
		tcs = append(tcs, fromFile...)
		if fi, err := os.Stat(cfg.TokensFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("admin tokens file is readable by other users", keyFile, cfg.TokensFile)
		}
	}
	if cfg.TokenEnv != "" {
		if secret := getenv(cfg.TokenEnv); secret != "" {
			if len(secret) < minSecretLen {
				return nil, fmt.Errorf("admin token from $%s: want at least %d characters", cfg.TokenEnv, minSecretLen)
			}
			tcs = append(tcs, TokenConfig{ID: cfg.TokenEnvID, Role: RoleAdmin.String(), SHA256: HashSecret(secret)})
		}
	}
	var out []token
	ids := map[string]bool{}
	hashes := map[[32]byte]string{}
	for _, tc := range tcs {
		t, err := tc.token()
		if err != nil {
			return nil, fmt.Errorf("admin tokens: %w", err)
		}
		if ids[t.id] {
			return nil, fmt.Errorf("admin tokens: id %q given twice", t.id)
		}
		if other, ok := hashes[t.hash]; ok {
			// One secret, two ids: the audit log could not say who.
			return nil, fmt.Errorf("admin tokens: %q and %q have the same secret", other, t.id)
		}
		ids[t.id] = true
		hashes[t.hash] = t.id
		out = append(out, t)
	}
	return out, nil
}

// Handle registers h for pattern (an http.ServeMux pattern that starts
// with its method, e.g. "GET /policy") behind role:
//
//   - RolePublic: GET only; health checks and static assets, never data.
//   - RoleRead: any method; a non-GET read (a POST of SQL, a preview) also
//     passes the cross-origin check of mutations.
//   - RoleAdmin: POST, PUT, PATCH or DELETE only, so no state changes by
//     GET (which a link, an <img> or a prefetch can send).
//
// Handle panics, as http.ServeMux does, on a pattern without a method, a
// method the role does not allow, or a pattern already registered: these
// are wiring mistakes that must not start.
func (s *Server) Handle(pattern string, role Role, h http.Handler) {
	method, _, ok := strings.Cut(pattern, " ")
	if !ok || method == "" || strings.HasPrefix(method, "/") {
		panic(fmt.Sprintf("admin: pattern %q: want a method, e.g. \"GET /path\"", pattern))
	}
	switch role {
	case RolePublic:
		if method != http.MethodGet {
			panic(fmt.Sprintf("admin: pattern %q: public routes are GET only", pattern))
		}
	case RoleRead:
	case RoleAdmin:
		if !isMutation(method) {
			panic(fmt.Sprintf("admin: pattern %q: admin routes change state, so POST, PUT, PATCH or DELETE only", pattern))
		}
	default:
		panic(fmt.Sprintf("admin: pattern %q: unknown role %v", pattern, role))
	}
	s.mux.Handle(pattern, s.guard(role, h))
	s.mu.Lock()
	s.routes = append(s.routes, Route{Pattern: pattern, Role: role})
	s.mu.Unlock()
}

// Routes returns the registered routes, built-in ones included, in
// registration order; a command's tests walk it to check that every
// non-public route refuses a request without a token.
func (s *Server) Routes() []Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.routes)
}

// isMutation reports whether method may change state: anything but GET,
// HEAD and OPTIONS.
func isMutation(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// guard checks, in order: Sec-Fetch-Site (a browser on another site may
// not call any protected route, unless its Origin is allowed), the
// cross-origin check of mutations, the token, the role. It then puts the token id in the request's context.
func (s *Server) guard(role Role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if role == RolePublic {
			h.ServeHTTP(w, r)
			return
		}
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" && !s.origins[r.Header.Get("Origin")] {
			s.refuse(w, r, http.StatusForbidden, reasonCrossSite, "", "cross-site requests are refused")
			return
		}
		if isMutation(r.Method) {
			if err := s.cop.Check(r); err != nil {
				s.refuse(w, r, http.StatusForbidden, reasonCrossSite, "", "cross-origin requests that change state are refused; send them from the admin port's own origin or list the origin in allowed_origins")
				return
			}
		}
		secret, ok := credentials(r)
		if !ok {
			s.refuse(w, r, http.StatusUnauthorized, reasonMissingToken, "", "a bearer token is required: Authorization: Bearer <token>")
			return
		}
		tok, ok := s.tokens.lookup(secret)
		if !ok {
			s.refuse(w, r, http.StatusUnauthorized, reasonInvalidToken, fingerprint(secret), "invalid token")
			return
		}
		if tok.role < role {
			s.refuse(w, r, http.StatusForbidden, reasonRole, tok.id, "token "+tok.id+" has the "+tok.role.String()+" role; this needs "+role.String())
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		ctx := context.WithValue(r.Context(), requestKey{}, &request{tokenID: tok.id, role: tok.role, srv: s})
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// credentials returns the secret of "Authorization: Bearer <secret>" or,
// for clients that can only put credentials in a URL (go-livepeer's
// -orchWebhookUrl http://x:<secret>@host/...), the password of Basic.
func credentials(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok {
		return "", false
	}
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return rest, rest != ""
	case strings.EqualFold(scheme, "Basic"):
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return "", false
		}
		_, pass, ok := strings.Cut(string(b), ":")
		return pass, ok && pass != ""
	}
	return "", false
}

// refuse answers a refused request with a JSON error, counts it and logs
// it with the client's address and the token id (or the fingerprint of an
// unknown secret), never a secret.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, reason, who, msg string) {
	s.refused.WithLabelValues(reason).Inc()
	attrs := []any{keyReason, reason, keyRemote, remoteIP(r), keyMethod, r.Method, keyPath, r.URL.Path}
	switch reason {
	case reasonInvalidToken:
		attrs = append(attrs, keyFinger, who)
	case reasonRole:
		attrs = append(attrs, keyToken, who)
	}
	s.log.Warn("admin request refused", attrs...)
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="loopgate admin"`)
	}
	WriteError(w, code, msg)
}

// remoteIP is the peer's address without its port. X-Forwarded-For is not
// read: anyone can send it.
func remoteIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// Handler returns the server's handler, for tests and for callers that
// serve it themselves. Unknown paths and methods answer JSON errors too.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := s.mux.Handler(r); pattern == "" {
			// The mux's own answer (404, or 405 with Allow), as JSON; it
			// has no side effect, so asking it twice is harmless.
			rec := &statusRecorder{header: http.Header{}}
			s.mux.ServeHTTP(rec, r)
			if rec.code >= 400 {
				if allow := rec.header.Get("Allow"); allow != "" {
					w.Header().Set("Allow", allow)
				}
				WriteError(w, rec.code, strings.ToLower(http.StatusText(rec.code)))
				return
			}
			// A redirect (a pattern "/x/" asked as "/x"): the mux's own.
		}
		s.mux.ServeHTTP(w, r)
	})
}

// statusRecorder keeps the status and headers of the mux's not-found and
// method-not-allowed answers and drops their text bodies.
type statusRecorder struct {
	header http.Header
	code   int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(code int)        { s.code = code }

// Run serves on Config.Addr until ctx ends, then shuts down gracefully
// (Config.ShutdownTimeout). An empty Addr serves nothing and waits for ctx.
func (s *Server) Run(ctx context.Context) error {
	if s.cfg.Addr == "" {
		<-ctx.Done()
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened (e.g. on port 0 in tests);
// it closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	// What net/http answers below the handler (431, 400, a header
	// timeout) in the one JSON error shape too.
	jl := jsonconn.NewListener(ln, jsonconn.Config{MaxHeaderBytes: http.DefaultMaxHeaderBytes}, jsonconn.Hooks{})
	jl.Configure(srv)
	defer jl.Wait()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(jl) }()
	s.log.Info("listening", keyAddr, ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve admin on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shut down admin on %s: %w", ln.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve admin on %s: %w", ln.Addr(), err)
	}
	return nil
}

// WriteError answers code with {"error":{"message":msg}}, the shape of
// every loopgate HTTP error (event.APIError). Handlers use it so every
// admin error has the same shape.
func WriteError(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, event.NewAPIError(msg))
}

// WriteJSON answers code with v as JSON.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // nosniff and application/json: "<" stays readable
	if err := enc.Encode(v); err != nil {
		code = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"message":"encode response"}}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}
