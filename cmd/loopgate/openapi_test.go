package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/loopgate/loopgate/openapi"
)

// TestOpenAPIMatchesServedRoutes: every route the router's public handler
// and `loopgate dev`'s admin server serve (dev mounts every command's
// admin routes: the router's, the optimizer's, the console and /query) is
// in openapi.json with its role, and every documented operation is
// served. A route added without documentation fails here.
func TestOpenAPIMatchesServedRoutes(t *testing.T) {
	d := newDevSurface(t)
	var served []openapi.Route
	for _, r := range d.rsvc.r.Routes() {
		served = append(served, openapi.Route{Port: openapi.PortRouter, Method: r.Method, Path: r.Path})
	}
	for _, r := range d.srv.Routes() {
		method, path, _ := strings.Cut(r.Pattern, " ")
		served = append(served, openapi.Route{Port: openapi.PortAdmin, Method: method, Path: path, Role: r.Role.String()})
	}
	if len(served) < 30 {
		t.Fatalf("got %d served routes, want the router's 20 and dev's admin routes", len(served))
	}
	ops, err := openapi.Operations()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range openapi.Compare(ops, served) {
		t.Error(p)
	}

	// The router serves the document itself, on both paths.
	srv := httptest.NewServer(d.rsvc.r.Handler())
	defer srv.Close()
	for _, path := range []string{"/openapi.json", "/v1/openapi.json"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || string(b) != string(openapi.JSON()) {
			t.Fatalf("GET %s: got %d %q and %d bytes, want 200 application/json and the document", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
		}
	}
}
