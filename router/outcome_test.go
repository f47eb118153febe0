package router

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/png"
	"math"
	"mime/multipart"
	"net/http"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/loopgate/loopgate/event"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }

func TestOutcomeContent(t *testing.T) {
	var tr *testRouter
	a := newUpstream(t, nil)
	b := newUpstream(t, nil)
	cfg := testConfig(orch("a", a.srv.URL, t2i(1e-9)), orch("b", b.srv.URL, t2i(2e-9)))
	cfg.Orchestrators[1].Region = "NYC"
	cfg.Selection.Exploration = 0
	cc := cfg.Capabilities[event.CapTextToImage]
	cc.CustomerPricePerUnit = 5e-9
	cfg.Capabilities[event.CapTextToImage] = cc
	tr = newTestRouter(t, cfg)
	// a fails slowly (billed: service began), b answers.
	a.set(func(w http.ResponseWriter, r *http.Request) {
		tr.clock.Advance(300 * time.Millisecond)
		status(500, `{"error":"oom"}`)(w, r)
	})
	b.set(advancing(tr.clock, 200*time.Millisecond, `{"images":[]}`))
	if err := tr.SetPolicy(sharesPolicy(3, event.ClassPolicy{Capability: event.CapTextToImage, Model: "m1",
		Shares: []event.Share{{Orchestrator: "a", Share: 1}}})); err != nil {
		t.Fatal(err)
	}
	start := tr.clock.Now()
	body := []byte(`{"prompt":"x","model_id":"m1","height":256,"width":128,"num_images_per_prompt":2}`)
	code, h, resp := tr.post(t, "/text-to-image", "application/json", body, nil)
	if code != 200 {
		t.Fatalf("got %d %q", code, resp)
	}
	outs := tr.pub.wait(t, 1)
	if len(outs) != 1 {
		t.Fatalf("got %d outcomes, want 1", len(outs))
	}
	o := outs[0]
	if tr.pub.keys[0] != o.ID || o.ID != h.Get(HeaderRequestID) || !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(o.ID) {
		t.Fatalf("got id %q key %q header %q, want one UUIDv7 used as key and header", o.ID, tr.pub.keys[0], h.Get(HeaderRequestID))
	}
	units := int64(256 * 128 * 2)
	want := event.Outcome{
		ID: o.ID, Schema: event.SchemaVersion, GatewayID: "gw-test", GatewayRegion: "FRA", ClientRegion: "LON",
		APIKeyID: "key-1", Customer: "acme", Capability: event.CapTextToImage, Model: "m1", Units: units, UnitKind: event.UnitPixels,
		StartMs: start.UnixMilli(), EndMs: start.Add(500 * time.Millisecond).UnixMilli(), Status: event.StatusOK,
		HTTPStatus: 200, LatencyMs: 500, TTFBMs: 500, BytesIn: int64(len(body)), BytesOut: int64(len(resp)),
		PricePerUnit: 2e-9, Cost: float64(units) * (1e-9 + 2e-9), Charge: float64(units) * 5e-9, PolicyVersion: 3,
	}
	got := o
	got.Attempts = nil
	if !near(got.Cost, want.Cost) || !near(got.Charge, want.Charge) || !near(got.Margin, want.Charge-want.Cost) {
		t.Fatalf("got cost %v charge %v margin %v, want %v %v %v", got.Cost, got.Charge, got.Margin, want.Cost, want.Charge, want.Charge-want.Cost)
	}
	got.Cost, got.Charge, got.Margin = want.Cost, want.Charge, 0
	if !reflect.DeepEqual(got, wantNoAttempts(want)) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if len(o.Attempts) != 2 {
		t.Fatalf("got %d attempts, want 2", len(o.Attempts))
	}
	a0, a1 := o.Attempts[0], o.Attempts[1]
	if a0.Orchestrator != "a" || a0.OrchRegion != "FRA" || a0.StartMs != start.UnixMilli() || a0.LatencyMs != 300 ||
		a0.Result != event.AttemptError || a0.HTTPStatus != 500 || a0.Retry || !a0.Billed || !near(a0.Cost, float64(units)*1e-9) {
		t.Fatalf("first attempt: got %+v", a0)
	}
	if a1.Orchestrator != "b" || a1.OrchRegion != "NYC" || a1.StartMs != start.Add(300*time.Millisecond).UnixMilli() || a1.LatencyMs != 200 ||
		a1.Result != event.AttemptOK || a1.HTTPStatus != 200 || !a1.Retry || !a1.Billed || !near(a1.Cost, float64(units)*2e-9) {
		t.Fatalf("second attempt: got %+v", a1)
	}
	for i, at := range o.Attempts {
		if !(at.Propensity > 0 && at.Propensity <= 1) || at.Score.Weight <= 0 || at.Score.Penalty != 1 {
			t.Fatalf("attempt %d: got propensity %v score %+v, want propensity in (0,1], positive weight, no penalty", i, at.Propensity, at.Score)
		}
	}
	if a0.Score.Share != 1 || a0.Propensity != 1 || a1.Score.Share != 0 {
		t.Fatalf("got shares %v/%v propensity %v, want the policy's 1 and 0", a0.Score.Share, a1.Score.Share, a0.Propensity)
	}
	eventually(t, "the publication to be counted", func() bool { return value(t, tr.m.published) == 1 })
}

func wantNoAttempts(o event.Outcome) event.Outcome { o.Attempts = nil; return o }

func TestBillingRule(t *testing.T) {
	fast := 250 * time.Millisecond
	tests := []struct {
		res     event.AttemptResult
		latency int64
		want    bool
	}{
		{event.AttemptOK, 0, true},
		{event.AttemptRefused, 5000, false},
		{event.AttemptBusy, 5000, false},
		{event.AttemptClient, 5000, false},
		{event.AttemptError, 10, false},
		{event.AttemptError, 250, true},
		{event.AttemptTimeout, 30000, true},
		{event.AttemptCanceled, 100, false},
		{event.AttemptCanceled, 900, true},
	}
	for _, tt := range tests {
		if got := billed(event.Attempt{Result: tt.res, LatencyMs: tt.latency}, fast); got != tt.want {
			t.Errorf("%s after %d ms: got billed=%v, want %v", tt.res, tt.latency, got, tt.want)
		}
	}
}

// wav returns a PCM WAV of d at 16 kHz, mono, 16 bit.
func wav(d time.Duration) []byte {
	const byteRate = 32000
	data := make([]byte, int(d.Seconds()*byteRate))
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF")
	_ = binary.Write(&b, le, uint32(36+len(data)))
	b.WriteString("WAVEfmt ")
	_ = binary.Write(&b, le, uint32(16))
	_ = binary.Write(&b, le, []uint16{1, 1})
	_ = binary.Write(&b, le, []uint32{16000, byteRate})
	_ = binary.Write(&b, le, []uint16{2, 16})
	b.WriteString("LIST")
	_ = binary.Write(&b, le, uint32(3))
	b.WriteString("abc\x00") // odd chunk, padded
	b.WriteString("data")
	_ = binary.Write(&b, le, uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

func pngOf(h, w int) []byte {
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h)))
	return b.Bytes()
}

func multipartBody(t *testing.T, fields map[string]string, files map[string][]byte) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range files {
		fw, err := mw.CreateFormFile(k, k+".bin")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write(v)
	}
	_ = mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

func TestAudioToTextUnits(t *testing.T) {
	const model = "openai/whisper-large-v3"
	tests := []struct {
		name     string
		audio    []byte
		response string
		want     int64
	}{
		{"WAV header", wav(1500 * time.Millisecond), `{"text":"hi","chunks":[{"timestamp":[0,9.0],"text":"hi"}]}`, 1500},
		{"from the response", []byte("ID3 not a wav"), `{"text":"hi","chunks":[{"timestamp":[0.0,1.2],"text":"a"},{"timestamp":[1.2,2.5],"text":"b"}]}`, 2500},
		{"open-ended last chunk", []byte("ogg"), `{"text":"hi","chunks":[{"timestamp":[0.0,1.2]},{"timestamp":[3.25,null]}]}`, 3250},
		{"default", []byte("ogg"), `{"text":"hi"}`, 60000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, okJSON(tt.response))
			tr := newTestRouter(t, testConfig(orch("a", up.srv.URL, ClassPrice{Capability: event.CapAudioToText, Model: model, PricePerUnit: 1e-5})))
			ct, body := multipartBody(t, nil, map[string][]byte{"audio": tt.audio})
			code, _, resp := tr.post(t, "/audio-to-text", ct, body, nil)
			if code != 200 || string(resp) != tt.response {
				t.Fatalf("got %d %q", code, resp)
			}
			o := tr.pub.wait(t, 1)[0]
			if o.Units != tt.want || o.UnitKind != event.UnitMillis || o.Model != model || !near(o.Cost, float64(tt.want)*1e-5) {
				t.Fatalf("got units %d %s model %q cost %v, want %d ms", o.Units, o.UnitKind, o.Model, o.Cost, tt.want)
			}
		})
	}
}

func TestPublishErrorDoesNotAffectResponse(t *testing.T) {
	up := newUpstream(t, okJSON(`{}`))
	tr := newTestRouter(t, testConfig(orch("a", up.srv.URL, t2i(1))))
	tr.pub.err = errors.New("kafka down")
	if code, _ := tr.postT2I(t); code != 200 {
		t.Fatalf("got %d, want 200", code)
	}
	eventually(t, "the publish error to be counted", func() bool { return value(t, tr.m.publishErrors) == 1 })
	if value(t, tr.m.published) != 0 {
		t.Fatal("a refused outcome counted as published")
	}
}
