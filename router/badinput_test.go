package router

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/loopgate/loopgate/event"
)

func TestBadInputIsAnsweredCountedNotForwarded(t *testing.T) {
	up := newUpstream(t, okJSON(`{}`))
	cfg := testConfig(orch("a", up.srv.URL, t2i(1), ClassPrice{Capability: event.CapUpscale, Model: "stabilityai/stable-diffusion-x4-upscaler"}))
	cfg.MaxBodyBytes = 1 << 10
	tr := newTestRouter(t, cfg)

	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("prompt", "sharper")
	_ = mw.Close()

	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		header      map[string]string
		wantCode    int
		wantReason  string
	}{
		{"unknown path", "POST", "/text-to-music", "application/json", `{}`, nil, 404, reasonNotFound},
		{"wrong method", "GET", "/text-to-image", "", "", nil, 405, reasonMethodNotAllowed},
		{"wrong method, versioned path", "PUT", "/v1/llm", "application/json", `{}`, nil, 405, reasonMethodNotAllowed},
		{"unknown versioned path", "POST", "/v1/text-to-music", "application/json", `{}`, nil, 404, reasonNotFound},
		{"trailing slash", "POST", "/llm/", "application/json", `{}`, nil, 404, reasonNotFound},
		{"missing key", "POST", "/text-to-image", "application/json", `{"prompt":"x"}`, map[string]string{"Authorization": ""}, 401, reasonMissingKey},
		{"not bearer", "POST", "/text-to-image", "application/json", `{"prompt":"x"}`, map[string]string{"Authorization": "Basic " + testKey}, 401, reasonMissingKey},
		{"wrong key", "POST", "/text-to-image", "application/json", `{"prompt":"x"}`, map[string]string{"Authorization": "Bearer nope"}, 403, reasonWrongKey},
		{"body over limit", "POST", "/text-to-image", "application/json", `{"prompt":"` + strings.Repeat("x", 2000) + `"}`, nil, 413, reasonTooLarge},
		{"chunked body over limit", "POST", "/text-to-image", "application/json", "chunked:" + `{"prompt":"` + strings.Repeat("x", 2000) + `"}`, nil, 413, reasonTooLarge},
		{"invalid JSON", "POST", "/text-to-image", "application/json", `{"prompt":`, nil, 400, "invalid_json"},
		{"JSON array", "POST", "/text-to-image", "application/json", `["prompt"]`, nil, 400, "invalid_json"},
		{"missing prompt", "POST", "/text-to-image", "application/json", `{"model_id":"m1"}`, nil, 400, "missing_field"},
		{"height not a number", "POST", "/text-to-image", "application/json", `{"prompt":"x","height":"tall"}`, nil, 400, "invalid_field"},
		{"height out of range", "POST", "/text-to-image", "application/json", `{"prompt":"x","height":0}`, nil, 400, "invalid_field"},
		{"model not a string", "POST", "/text-to-image", "application/json", `{"prompt":"x","model_id":7}`, nil, 400, "invalid_field"},
		{"multipart endpoint given JSON", "POST", "/upscale", "application/json", `{"prompt":"x"}`, nil, 415, reasonMediaType},
		{"JSON endpoint given multipart", "POST", "/text-to-image", mw.FormDataContentType(), mp.String(), nil, 415, reasonMediaType},
		{"JSON endpoint given text", "POST", "/text-to-image", "text/plain", `{"prompt":"x"}`, nil, 415, reasonMediaType},
		{"JSON endpoint given a form", "POST", "/v1/llm", "application/x-www-form-urlencoded", `{"messages":[]}`, nil, 415, reasonMediaType},
		{"JSON endpoint given a bad Content-Type", "POST", "/text-to-image", "application/", `{"prompt":"x"}`, nil, 415, reasonMediaType},
		{"unknown model", "POST", "/text-to-image", "application/json", `{"prompt":"x","model_id":"m2"}`, nil, 404, reasonUnknownModel},
		{"broken multipart", "POST", "/upscale", mw.FormDataContentType(), "--nope\r\n", nil, 400, "invalid_multipart"},
		{"multipart missing image", "POST", "/upscale", mw.FormDataContentType(), mp.String(), nil, 400, "missing_field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := value(t, tr.m.rejected.WithLabelValues(tt.wantReason))
			var body io.Reader = strings.NewReader(tt.body)
			if rest, ok := strings.CutPrefix(tt.body, "chunked:"); ok {
				body = io.MultiReader(strings.NewReader(rest)) // unknown length: sent chunked
			}
			req, _ := http.NewRequest(tt.method, tr.srv.URL+tt.path, body)
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			req.Header.Set("Authorization", "Bearer "+testKey)
			for k, v := range tt.header {
				if v == "" {
					req.Header.Del(k)
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := tr.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b := new(bytes.Buffer)
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("got %d %q, want %d", resp.StatusCode, b, tt.wantCode)
			}
			if e := apiError(t, resp.Header, b.Bytes()); e.Reason != tt.wantReason {
				t.Fatalf("got reason %q in %q, want %q", e.Reason, b, tt.wantReason)
			}
			if tt.wantCode == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != http.MethodPost {
				t.Fatalf("got Allow %q, want POST", resp.Header.Get("Allow"))
			}
			if got := value(t, tr.m.rejected.WithLabelValues(tt.wantReason)); got != before+1 {
				t.Fatalf("got rejected{reason=%q} %v, want %v", tt.wantReason, got, before+1)
			}
			if up.hits.Load() != 0 {
				t.Fatal("a bad request reached the orchestrator")
			}
			if n := len(tr.pub.outcomes()); n != 0 {
				t.Fatalf("got %d outcomes, want none for bad input", n)
			}
		})
	}
}

// TestUnknownModelIs404: a model no configured orchestrator serves is the
// client's mistake, answered 404 unknown_model (not a retryable 503), and
// like other bad input it is not forwarded and writes no outcome.
func TestUnknownModelIs404(t *testing.T) {
	up := newUpstream(t, okJSON(`{}`))
	tr := newTestRouter(t, testConfig(orch("a", up.srv.URL, t2i(1))))
	tests := []struct{ name, path, body string }{
		{"unserved model", "/text-to-image", `{"prompt":"x","model_id":"m2"}`},
		{"default model nobody serves", "/text-to-image", `{"prompt":"x"}`},
		{"unserved capability", "/text-to-speech", `{"text":"hello"}`},
		{"unserved model, versioned path", "/v1/text-to-image", `{"prompt":"x","model_id":"m2"}`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, body := tr.post(t, tt.path, "application/json", []byte(tt.body), nil)
			if code != http.StatusNotFound {
				t.Fatalf("got %d %q, want 404", code, body)
			}
			if e := apiError(t, h, body); e.Reason != reasonUnknownModel {
				t.Fatalf("got reason %q, want %q", e.Reason, reasonUnknownModel)
			}
			if up.hits.Load() != 0 {
				t.Fatal("forwarded")
			}
			if got := value(t, tr.m.rejected.WithLabelValues(reasonUnknownModel)); got != float64(i+1) {
				t.Fatalf("got rejected{unknown_model} %v, want %d", got, i+1)
			}
			if n := len(tr.pub.outcomes()); n != 0 {
				t.Fatalf("got %d outcomes, want none for an unknown model", n)
			}
		})
	}
	// The served model still routes, on both paths.
	for _, path := range []string{"/text-to-image", "/v1/text-to-image"} {
		if code, _, body := tr.post(t, path, "application/json", []byte(`{"prompt":"x","model_id":"m1"}`), nil); code != http.StatusOK {
			t.Fatalf("%s for m1: got %d %q, want 200", path, code, body)
		}
	}
}

func TestPanicIsAnswered500(t *testing.T) {
	tr := newTestRouter(t, testConfig(orch("a", "http://a.invalid", t2i(1))))
	tr.engine.POST("/boom", func(*gin.Context) { panic("boom") })
	code, _, body := tr.post(t, "/boom", "application/json", []byte(`{}`), nil)
	if code != 500 {
		t.Fatalf("got %d, want 500", code)
	}
	errorMessage(t, body)
}
