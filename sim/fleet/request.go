package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"time"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/sim/scenario"
)

// HeaderClass optionally names the scenario class of a request. The load
// generator sends it (the router forwards it untouched); the fleet uses it
// only to choose between scenario classes that share a capability and a
// model. Routing never depends on it.
const HeaderClass = "X-Loopgate-Sim-Class"

// Capabilities are the Livepeer AI gateway paths, without the slash.
func Capabilities() []string {
	return []string{
		"text-to-image", "image-to-image", "image-to-video", "upscale", "audio-to-text",
		"segment-anything-2", "image-to-text", "llm", "text-to-speech",
	}
}

// ClassKey is what identifies a class on the wire: the capability (the
// path) and the model (model_id in the body).
type ClassKey struct {
	Capability string
	Model      string
}

// classTable resolves requests to scenario classes.
type classTable struct {
	caps  map[string]bool    // paths served: the nine Livepeer ones and any scenario capability
	byKey map[ClassKey][]int // scenario class indices, in scenario order
	byCap map[string][]int
}

func newClassTable(sc *scenario.Scenario) classTable {
	t := classTable{caps: map[string]bool{}, byKey: map[ClassKey][]int{}, byCap: map[string][]int{}}
	for _, c := range Capabilities() {
		t.caps[c] = true
	}
	for i, c := range sc.Classes {
		t.caps[c.Capability] = true
		k := ClassKey{c.Capability, c.Model}
		t.byKey[k] = append(t.byKey[k], i)
		t.byCap[c.Capability] = append(t.byCap[c.Capability], i)
	}
	return t
}

// httpError is a request the fleet answers with a 4xx before admission.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// parsed is what the fleet needs from a request.
type parsed struct {
	capability string
	model      string
	candidates []int  // scenario classes the request may be, in scenario order
	hint       string // HeaderClass
	stream     bool   // llm "stream": true
}

// parse reads the whole body (so the connection stays reusable) and
// resolves the request's candidate classes.
func (t classTable) parse(w http.ResponseWriter, r *http.Request, maxBody int64, sc *scenario.Scenario) (parsed, *httpError) {
	capability := strings.Trim(r.URL.Path, "/")
	if !t.caps[capability] {
		return parsed{}, errorf(http.StatusNotFound, "no such path: %s", r.URL.Path)
	}
	if r.Method != http.MethodPost {
		return parsed{}, errorf(http.StatusMethodNotAllowed, "%s takes POST, got %s", r.URL.Path, r.Method)
	}
	body := http.MaxBytesReader(w, r.Body, maxBody)
	defer func() { _, _ = io.Copy(io.Discard, body) }()
	p := parsed{capability: capability, hint: r.Header.Get(HeaderClass)}
	var err error
	mediaType, params, mtErr := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mtErr == nil && mediaType == "multipart/form-data" {
		p.model, err = multipartModel(body, params["boundary"])
	} else {
		p.model, p.stream, err = jsonModel(body)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return parsed{}, errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", mbe.Limit)
		}
		return parsed{}, errorf(http.StatusBadRequest, "%v", err)
	}
	if p.model != "" {
		p.candidates = t.byKey[ClassKey{capability, p.model}]
		if len(p.candidates) == 0 {
			return parsed{}, errorf(http.StatusBadRequest, "model %q is not a %s model of scenario %s", p.model, capability, sc.Name)
		}
		return p, nil
	}
	// No model: unambiguous only if the scenario has one model for the path.
	models := map[string]bool{}
	for _, i := range t.byCap[capability] {
		models[sc.Classes[i].Model] = true
	}
	if len(models) != 1 {
		return parsed{}, errorf(http.StatusBadRequest, "missing model_id: scenario %s has %d %s models", sc.Name, len(models), capability)
	}
	p.candidates = t.byCap[capability]
	p.model = sc.Classes[p.candidates[0]].Model
	return p, nil
}

// jsonModel reads model_id (else model, as /llm's OpenAI-shaped body has
// it) and stream from a JSON object.
func jsonModel(r io.Reader) (model string, stream bool, err error) {
	var obj map[string]json.RawMessage
	if err := json.NewDecoder(r).Decode(&obj); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", false, err
		}
		return "", false, fmt.Errorf("invalid JSON body: %v", err)
	}
	for _, key := range []string{"model_id", "model"} {
		if raw, ok := obj[key]; ok && string(raw) != "null" {
			if json.Unmarshal(raw, &model) != nil {
				return "", false, fmt.Errorf("invalid field %s: must be a string", key)
			}
			if model != "" {
				break
			}
		}
	}
	if raw, ok := obj["stream"]; ok {
		_ = json.Unmarshal(raw, &stream)
	}
	return model, stream, nil
}

// multipartModel reads the model_id (else model) form field.
func multipartModel(r io.Reader, boundary string) (string, error) {
	if boundary == "" {
		return "", errors.New("invalid multipart body: no boundary")
	}
	mr := multipart.NewReader(r, boundary)
	fields := map[string]string{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return "", err
			}
			return "", fmt.Errorf("invalid multipart body: %v", err)
		}
		name := part.FormName()
		if (name == "model_id" || name == "model") && part.FileName() == "" {
			b, err := io.ReadAll(io.LimitReader(part, 4<<10))
			if err != nil {
				return "", fmt.Errorf("invalid multipart body: %v", err)
			}
			fields[name] = strings.TrimSpace(string(b))
		}
		if _, err := io.Copy(io.Discard, part); err != nil {
			return "", fmt.Errorf("invalid multipart body: %v", err)
		}
	}
	if m := fields["model_id"]; m != "" {
		return m, nil
	}
	return fields["model"], nil
}

// pixelPNG is a 1×1 PNG, the image of every simulated answer.
const pixelPNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="

// successBody is a small answer shaped like go-livepeer's for the
// capability. llm answers OpenAI-style (or one server-sent event when the
// request asked to stream, in streamBody).
func successBody(p parsed, cls scenario.Class, orch string, seed int64, now time.Time) any {
	media := map[string]any{"url": pixelPNG, "seed": seed, "nsfw": false}
	switch p.capability {
	case "text-to-image", "image-to-image", "upscale":
		return map[string]any{"images": []any{media}}
	case "image-to-video":
		media["url"] = "data:video/mp4;base64,AAAAGGZ0eXBtcDQyAAAAAG1wNDJpc29t"
		return map[string]any{"images": []any{media}}
	case "audio-to-text":
		secs := cls.Units / 1000 // audio-to-text units are milliseconds
		return map[string]any{
			"text":   "simulated transcript",
			"chunks": []any{map[string]any{"timestamp": []float64{0, secs}, "text": "simulated transcript"}},
		}
	case "segment-anything-2":
		return map[string]any{"masks": "[[[0]]]", "scores": "[0.9]", "logits": "[[[0.0]]]"}
	case "image-to-text":
		return map[string]any{"text": "a simulated picture"}
	case "text-to-speech":
		return map[string]any{"audio": map[string]any{"url": "data:audio/wav;base64,UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA="}}
	case "llm":
		tokens := int64(cls.Units)
		return map[string]any{
			"id":      fmt.Sprintf("chatcmpl-%s-%d", orch, seed),
			"model":   p.model,
			"created": now.Unix(),
			"choices": []any{map[string]any{
				"index":         0,
				"message":       map[string]any{"role": "assistant", "content": "simulated answer"},
				"finish_reason": "stop",
			}},
			"usage": map[string]any{"prompt_tokens": 8, "completion_tokens": tokens, "total_tokens": tokens + 8},
		}
	}
	return map[string]any{"result": "ok", "orchestrator": orch}
}

// errorBody is go-livepeer's error shape (event.APIError).
func errorBody(msg string) any { return event.NewAPIError(msg) }
