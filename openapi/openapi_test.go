package openapi

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

func load(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(JSON())
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	return doc
}

// TestDocumentIsValidOpenAPI: the document passes an OpenAPI 3 validator.
func TestDocumentIsValidOpenAPI(t *testing.T) {
	doc := load(t)
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not valid OpenAPI 3: %v", err)
	}
	if _, err := Operations(); err != nil {
		t.Fatal(err)
	}
}

// TestEveryErrorIsTheOneShape: every documented 4xx and 5xx answer is
// application/json with the APIError schema.
func TestEveryErrorIsTheOneShape(t *testing.T) {
	doc := load(t)
	n := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code, ref := range op.Responses.Map() {
				c, err := strconv.Atoi(code)
				if err != nil || c < 400 {
					continue
				}
				n++
				mt := ref.Value.Content.Get("application/json")
				if mt == nil || mt.Schema == nil || !strings.HasSuffix(mt.Schema.Ref, "/APIError") {
					t.Errorf("%s %s %s: not application/json APIError", method, path, code)
				}
			}
		}
	}
	if n < 100 {
		t.Fatalf("checked %d error answers, want every operation's (more than 100)", n)
	}
}

func TestCompare(t *testing.T) {
	ops := []Operation{
		{Port: PortRouter, Method: "POST", Path: "/llm"},
		{Port: PortAdmin, Method: "GET", Path: "/console/", Role: "public"},
		{Port: PortAdmin, Method: "GET", Path: "/orchestrators/webhook", Role: "read"},
		{Port: PortAdmin, Method: "POST", Path: "/lambda", Role: "admin"},
	}
	all := []Route{
		{Port: PortRouter, Method: "POST", Path: "/llm"},
		{Port: PortAdmin, Method: "GET", Path: "/console/", Role: "public"},
		{Port: PortAdmin, Method: "GET", Path: "/orchestrators/", Role: "read"},
		{Port: PortAdmin, Method: "POST", Path: "/lambda", Role: "admin"},
	}
	tests := []struct {
		name   string
		served []Route
		want   []string
	}{
		{"each documented and served", all, nil},
		{"an undocumented route", append(all[:4:4], Route{Port: PortRouter, Method: "POST", Path: "/v2/llm"}), []string{"router POST /v2/llm: served but not in openapi.json"}},
		{"a documented route gone", all[1:], []string{"router POST /llm: in openapi.json but not served"}},
		{"same path, other port", append(all[1:4:4], Route{Port: PortAdmin, Method: "POST", Path: "/llm", Role: "read"}),
			[]string{"router POST /llm: in openapi.json but not served", "admin POST /llm: served but not in openapi.json"}},
		{"other method", append(all[:3:3], Route{Port: PortAdmin, Method: "GET", Path: "/lambda", Role: "read"}),
			[]string{"admin POST /lambda: in openapi.json but not served", "admin GET /lambda: served but not in openapi.json"}},
		{"role differs", append(all[:3:3], Route{Port: PortAdmin, Method: "POST", Path: "/lambda", Role: "read"}),
			[]string{`admin POST /lambda: served with role "read", documented with x-loopgate-role "admin"`}},
		{"a router path is never a subtree", []Route{all[0], all[1], all[3], {Port: PortRouter, Method: "GET", Path: "/orchestrators/"}},
			[]string{"admin GET /orchestrators/webhook: in openapi.json but not served", "router GET /orchestrators/: served but not in openapi.json"}},
		{"the exact route wins over the subtree", append(all[:4:4], Route{Port: PortAdmin, Method: "GET", Path: "/orchestrators/webhook", Role: "public"}),
			[]string{`admin GET /orchestrators/webhook: served with role "public", documented with x-loopgate-role "read"`, "admin GET /orchestrators/: served but not in openapi.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compare(ops, tt.served)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
