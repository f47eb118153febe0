package openapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// document is openapi.json. go:embed needs a package-level variable; it is
// never written, and JSON hands out copies.
//
//go:embed openapi.json
var document []byte

// JSON returns the document (a copy).
func JSON() []byte { return slices.Clone(document) }

// Ports a path is served on (x-loopgate-port).
const (
	PortRouter = "router"
	PortAdmin  = "admin"
)

// Operation is one documented method on one path.
type Operation struct {
	Port   string // PortRouter or PortAdmin
	Method string // upper case, e.g. "POST"
	Path   string // e.g. "/v1/llm", "/console/"
	Role   string // x-loopgate-role of admin operations: public, read or admin
}

func (o Operation) String() string { return o.Port + " " + o.Method + " " + o.Path }

// Operations lists the document's operations, sorted.
func Operations() ([]Operation, error) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(document, &doc); err != nil {
		return nil, fmt.Errorf("decode openapi.json: %w", err)
	}
	var out []Operation
	for path, item := range doc.Paths {
		var port string
		if err := json.Unmarshal(item["x-loopgate-port"], &port); err != nil || (port != PortRouter && port != PortAdmin) {
			return nil, fmt.Errorf("openapi.json: path %s: x-loopgate-port must be %q or %q", path, PortRouter, PortAdmin)
		}
		for key, raw := range item {
			method := strings.ToUpper(key)
			switch method {
			case "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE":
			default:
				continue
			}
			var op struct {
				Role string `json:"x-loopgate-role"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, fmt.Errorf("openapi.json: %s %s: %w", method, path, err)
			}
			out = append(out, Operation{Port: port, Method: method, Path: path, Role: op.Role})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// Route is one route a process serves.
type Route struct {
	Port   string // PortRouter or PortAdmin
	Method string
	// Path as registered: an exact path, or on the admin port an
	// http.ServeMux subtree pattern ending in "/" ("/console/"), which
	// documented paths under it (or the pattern itself) document.
	Path string
	// Role on the admin port: public, read or admin; "" on the router's.
	Role string
}

func (r Route) String() string { return r.Port + " " + r.Method + " " + r.Path }

// serves reports whether r serves op's method and path.
func (r Route) serves(op Operation) bool {
	if r.Port != op.Port || r.Method != op.Method {
		return false
	}
	if r.Path == op.Path {
		return true
	}
	return r.Port == PortAdmin && strings.HasSuffix(r.Path, "/") && strings.HasPrefix(op.Path, r.Path)
}

// Compare checks served against ops both ways and returns what disagrees:
// a served route no operation documents, a documented operation no route
// serves, and an admin route whose role is not the documented one. As in
// http.ServeMux, an operation is served by the most specific route that
// matches it (an exact path over a subtree).
func Compare(ops []Operation, served []Route) (problems []string) {
	documented := make([]bool, len(served))
	for _, op := range ops {
		best := -1
		for i, r := range served {
			if r.serves(op) && (best < 0 || len(r.Path) > len(served[best].Path)) {
				best = i
			}
		}
		if best < 0 {
			problems = append(problems, fmt.Sprintf("%s: in openapi.json but not served", op))
			continue
		}
		documented[best] = true
		if r := served[best]; r.Port == PortAdmin && op.Role != r.Role {
			problems = append(problems, fmt.Sprintf("%s: served with role %q, documented with x-loopgate-role %q", r, r.Role, op.Role))
		}
	}
	for i, r := range served {
		if !documented[i] {
			problems = append(problems, fmt.Sprintf("%s: served but not in openapi.json", r))
		}
	}
	return problems
}
