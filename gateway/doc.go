// Package gateway is the business side of a loopgate gateway: it admits
// each request by the limits and budgets of its API key and customer and
// by IP allowlists, and prices it by the customer's tier.
//
// The router calls it at one point (router.Gate): after it has
// authenticated the key and parsed the request, before any orchestrator
// is tried, and once more with the outcome:
//
//	gw, err := gateway.New(cfg.Gateway, routerCfg.GatewayID, deps.Deps{Logger: log, Registerer: reg},
//		gateway.WithSpendSource(store), gateway.WithAuditor(auditor))
//	rt, err := router.New(routerCfg, pub, d, router.WithGate(gw))
//	g.Go(func() error { return gw.Run(ctx) }) // shares spend between routers, audits warnings
//	...
//	err = gw.SetConfig(newCfg.Gateway) // on SIGHUP, with the router's Reload
//
// # Customers, keys, tiers
//
// A key (event.APIKey, the router's api_keys entry or one made through the
// admin API) names its customer and carries its own scope (capabilities,
// models), max price per unit, allowlist, limits and budgets. A customer
// (Config.Customers) has a tier and limits and budgets over all its keys.
// A customer's tier is its own (Customer.Tier), else its key's
// (event.APIKey.Tier, which the router's shaping also reads), else
// Config.DefaultTier. A tier (Config.Tiers) is a price book: a fixed USD price per unit by
// "capability/model" or "capability", else a markup on cost (charge =
// cost × (1 + markup)), else the router's own customer price. Only
// successful requests are charged. Every outcome carries cost (paid to
// orchestrators), charge and margin = charge − cost.
//
// # Limits
//
// Per key and per customer: requests per second with a burst (a token
// bucket, golang.org/x/time/rate), requests in flight, and units per
// minute per unit kind (a sliding minute of one-second slots; units as
// the router parses them). All limits of the key and of its customer are
// checked before any is taken, so a refused request consumes nothing: it
// is refused once, for the first limit it hits, and a client retrying
// after Retry-After is not charged for its refusals. Over a limit:
//
//	429 rate_limited         requests_per_second; resets when the bucket holds a token again
//	429 concurrency_limited  concurrency; Retry-After 1 s (no reset time: when a request ends)
//	429 units_limited        units_per_minute.<kind>; resets when enough units leave the minute
//	                         (a single request over the whole limit has no reset)
//	402 budget_exceeded      budget.<period>.<of>; resets at the period's end
//	429 budget_pending       budget.<period>.<of>; several routers: this one's share of the rest is in flight
//	403 ip_not_allowed       allow_cidrs of the key or the global list
//
// each with Retry-After (seconds, rounded up) when there is a reset and
// the JSON error {"error": {"message", "code", "limit": {"scope", "id",
// "name", "value", "local", "reset_ms"}}} (event.APIError).
//
// Several routers: each router enforces 1/Config.Routers of a limit
// locally — rate/N with a burst of ⌊burst/N⌋, ⌊concurrency/N⌋ in flight,
// ⌊units/N⌋ a minute, each at least 1. The routers together therefore
// never admit more than the limit (rate·t + burst over any t; the
// concurrency; the units in any minute) when every limit is at least N;
// a limit below N is rounded up to one per router (at most N − limit
// over). The cost: a client whose traffic reaches only some routers gets
// only their share. Put routers behind a balancer that spreads each key.
//
// # Budgets
//
// Per key and per customer, per UTC calendar hour, day or month, in USD
// of charge (default) or of cost. At admission a request reserves its
// estimate: the price book × its units for charge, the highest price per
// unit of an orchestrator it may use × its units for cost. The outcome
// replaces the estimate by the actual charge or cost. At the limit: a
// request is admitted when spend + reservations + its estimate ≤ the
// budget (spend may end exactly at the budget), refused when it would go
// over by any amount. A request is counted in the period it started in.
// Crossing Config.WarnAt (80 % and 100 %) is counted
// (loopgate_gateway_budget_warnings_total), logged and audited once per
// period (action budget.warning).
//
// Several routers share spend through the warehouse: Run reads, every
// SyncInterval, the spend per key, customer and hour from the requests
// table (SpendSource): the other routers' (and this router's earlier
// runs'), and apart from it this router's own since it started, which it
// counts exactly itself and reads only to learn how much of it is
// visible. Two rules then hold a budget of B across n routers:
//
//   - total: own + in flight + others + this request ≤ B, else 402
//     budget_exceeded (resets at the period's end);
//   - share: this router's unseen spend (own not yet visible, plus in
//     flight) + this request ≤ (B − visible)/n, else 429 budget_pending
//     with Retry-After of one SyncInterval. A router with nothing unseen
//     may always admit one request that passes the total rule.
//
// The spend of all routers is then at most visible + n × (B − visible)/n
// = B, plus one request per other router at the very end (the second
// rule's exception): the stated tolerance is n − 1 requests' estimate,
// plus what actual costs exceed their estimates (billed retries). The
// 3-router test (e2e TestGatewayLimitsThreeRouters) measures it on real
// Kafka and ClickHouse. The share rule costs throughput only near the end
// of a budget (a router's spend rate there is bounded by its share over
// the pipeline's delay), and if ingest stops, each router stops at its
// share of what remained: a stalled pipeline cannot multiply a budget.
// Without a SpendSource each router holds itself to B/n.
//
// # Keys made through the admin API
//
// Keys (NewKeys) serves GET /keys, POST /keys, POST /keys/{id}/revoke
// and POST /keys/{id}/rotate on the router's admin server. A created or
// rotated key's secret ("lg_" + 32 random bytes, base64url) is in that
// answer only; the record keeps its SHA-256. Each change is validated,
// audited (key.create, key.revoke, key.rotate), written to a KeyStore
// (the warehouse's api_keys table: durable, shared by every router), and
// applied to this router (KeySink, the router's SetAPIKeys). Every router
// reads the store at start and every Config.KeySyncInterval, so a key
// survives restarts and reaches — or, revoked, leaves — every router
// within that interval. A configured key (api_keys in the config) wins
// over an API-made key of the same id, and is revoked in the config.
//
// # Networks
//
// Config.AllowCIDRs (all keys) and a key's AllowCIDRs restrict the client
// address. The client address is the TCP peer, unless the peer is in
// Config.TrustedProxies: then the rightmost X-Forwarded-For entry that is
// not a trusted proxy. Failed authentication is logged by the router with
// the peer address, X-Forwarded-For and the first 8 hex digits of the
// presented key's SHA-256, and counted in
// loopgate_router_rejected_total{reason="wrong_key"}.
//
// # Metrics
//
//	loopgate_gateway_admitted_total                          requests admitted
//	loopgate_gateway_refused_total{code,scope}               refusals by code and scope (key, customer, global)
//	loopgate_gateway_budget_used_ratio{scope,id,budget}      spend of the period / budget
//	loopgate_gateway_budget_warnings_total{scope,level}      warnings at 0.8 and 1
//	loopgate_gateway_spend_syncs_total{result}               reads of the other routers' spend (ok, error)
package gateway
