package jsonconn

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/loopgate/loopgate/event"
)

// TestPlainServerError: net/http's own answers (as server.go writes them)
// are recognised; a handler's answer, which carries Date, never is.
func TestPlainServerError(t *testing.T) {
	tests := []struct {
		name   string
		p      string
		code   int
		detail string
		ok     bool
	}{
		{"431", "HTTP/1.1 431 Request Header Fields Too Large" + netHTTPErrorHeaders + "431 Request Header Fields Too Large", 431, "", true},
		{"400", "HTTP/1.1 400 Bad Request" + netHTTPErrorHeaders + "400 Bad Request", 400, "", true},
		{"400 with a detail", "HTTP/1.1 400 Bad Request: missing required Host header" + netHTTPErrorHeaders + "400 Bad Request: missing required Host header", 400, "missing required Host header", true},
		{"501", "HTTP/1.1 501 Not Implemented" + netHTTPErrorHeaders + "Unsupported transfer encoding", 501, "Unsupported transfer encoding", true},
		{"a handler's 400", "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Tue, 01 Dec 2026 11:00:00 GMT\r\nConnection: close\r\n\r\nno", 0, "", false},
		{"a handler's 200", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 0, "", false},
		{"a 100 Continue", "HTTP/1.1 100 Continue\r\n\r\n", 0, "", false},
		{"body bytes", "{\"images\":[]}", 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, detail, ok := plainServerError([]byte(tt.p))
			if code != tt.code || detail != tt.detail || ok != tt.ok {
				t.Fatalf("got %d %q %v, want %d %q %v", code, detail, ok, tt.code, tt.detail, tt.ok)
			}
		})
	}
}

// TestResponse: the raw answer parses as HTTP with the one error shape.
func TestResponse(t *testing.T) {
	raw := Response(http.StatusServiceUnavailable, ReasonTooManyConns, `too "many"`, "Retry-After: 1\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	var e event.APIError
	if err := json.Unmarshal(b, &e); err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !resp.Close ||
		e.Error.Reason != ReasonTooManyConns || e.Error.Message != `too "many"` || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %v %q (%v)", resp.StatusCode, resp.Header, b, err)
	}
}
