// Package openapi is loopgate's OpenAPI 3 document: the router's Livepeer
// AI API (every capability at /<capability> and at /v1/<capability>, the
// versioned surface) and the admin API every command serves on its admin
// port (/healthz, /readyz, /metrics, the router's /policy and
// /orchestrators, the optimizer's /lambda, /frontier, /frontier/preview and
// advisor endpoints, the console, dev's /query).
//
// The document is openapi.json in this directory, embedded; edit it by
// hand. cmd serves it on the router's public port:
//
//	rt, err := router.New(cfg, pub, d, router.WithOpenAPI(openapi.JSON())) // GET /openapi.json, GET /v1/openapi.json
//
// Each path item says where it is served in the extension x-loopgate-port
// ("router" or "admin", matching its servers entry); each admin operation
// names the token role it needs in x-loopgate-role (public, read, admin).
//
// Compare checks a process's served routes against the document both
// ways; cmd/loopgate's TestOpenAPIMatchesServedRoutes runs it over the
// router's gin routes and `loopgate dev`'s admin patterns (the union of
// every command's), so a route added without documentation — or a
// documented one that is gone — fails the test.
//
// Every error in the document is components.schemas.APIError, the one
// error shape (event.APIError): {"error":{"message":"...","reason":"..."}}.
package openapi
