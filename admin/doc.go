// Package admin is the admin HTTP server every loopgate command runs on
// its admin port: /metrics, /healthz, /readyz and the component's own
// endpoints (the router's /policy and /orchestrators, the optimizer's
// /lambda and advisor endpoints, /query), all behind bearer tokens.
//
//	cfg := admin.DefaultConfig()            // 127.0.0.1:9464, token from $LOOPGATE_ADMIN_TOKEN
//	cfg.TokensFile = "/etc/loopgate/admin-tokens"
//	srv, err := admin.New(cfg, admin.Hooks{Gatherer: reg, Ready: store.Ping, Auditor: auditLog}, deps.Deps{Logger: log, Registerer: reg})
//	if err != nil { ... }
//	srv.Handle("GET /policy", admin.RoleRead, policyHandler)
//	srv.Handle("POST /lambda", admin.RoleAdmin, setLambda) // calls admin.AuditOrRefuse before applying
//	g.Go(func() error { return srv.Run(ctx) })             // until ctx ends, then a graceful shutdown
//
// # Tokens and roles
//
// A request presents "Authorization: Bearer <secret>" (or, for clients that
// can only put credentials in a URL such as go-livepeer's -orchWebhookUrl,
// Basic with the secret as the password). Tokens come from Config.Tokens
// (id, role, SHA-256 of the secret), Config.TokensFile (lines "id role
// secret", see ParseTokensFile) and the variable named by Config.TokenEnv
// (one admin token). Only hashes are kept; the presented secret is hashed
// and compared with every token's hash in constant time. Secrets are never
// logged and never in errors: a refused secret is logged as the first 8 hex
// digits of its SHA-256. GenerateToken makes a new secret (`make run`
// prints one).
//
// Two roles: read (policy, orchestrators, frontier, read-only SQL, metrics)
// and admin (everything that changes state). RolePublic routes need no
// token; they are /healthz, /readyz, /metrics when Config.PublicMetrics is
// set, and static assets.
//
// # Refusals
//
//	401 + WWW-Authenticate: Bearer  no token (missing_token) or an unknown one (invalid_token)
//	403                             a read token on an admin route (role); Sec-Fetch-Site: cross-site
//	                                on any protected route, or a mutation whose Origin is not the
//	                                admin port's own or an allowed origin (cross_site)
//	503                             a change whose audit record could not be written (audit)
//
// Every answer is JSON: {"status":"ok"}, {"status":"ready"} or
// {"error":{"message":"..."}}, also for unknown paths (404) and methods
// (405), and for what net/http answers on its own below the handlers
// (431, 400, 408 header_timeout: package internal/jsonconn).
//
// No state changes by GET: Handle refuses (panics at wiring time) an admin
// route whose method is not POST, PUT, PATCH or DELETE, and a public route
// that is not GET. Mutations pass net/http's CrossOriginProtection
// (Sec-Fetch-Site, else Origin against Host), so a page on another site that
// a developer has open cannot drive the admin port even though it can reach
// 127.0.0.1; tokens are never sent automatically by a browser.
//
// # Audit
//
// The id of the token that authenticated a request is in its context
// (TokenID). A mutation handler validates the change, then calls Audit (or
// AuditOrRefuse) with the action and the old and new values, and applies
// the change only if the record was written: a change whose audit row
// cannot be stored is refused. The records go to Hooks.Auditor, an interface
// the caller implements (cmd adapts it to the warehouse's audit table).
//
// # Metrics
//
//	loopgate_admin_refused_total{reason}  refused requests: missing_token, invalid_token, role, cross_site, audit
package admin
