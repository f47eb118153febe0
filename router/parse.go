package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on what a request may ask for. Beyond them the request is answered
// 400: they keep units inside int64 and model names inside the event schema.
const (
	maxModelLen = 256     // event.Outcome.Model limit
	maxDim      = 1 << 16 // pixels per side
	maxImages   = 1000    // num_images_per_prompt, frames
	maxTokens   = 1 << 24 // max_tokens
	maxParts    = 256     // multipart parts
	maxFieldLen = 4 << 10 // a scalar multipart field (model_id, height, ...)
)

// badRequest is a request the router refuses with 400 before any attempt.
type badRequest struct {
	reason string // metric label: invalid_json, invalid_multipart, missing_field, invalid_field, unsupported_media_type
	msg    string
}

func (e *badRequest) Error() string { return e.msg }

func badf(reason, format string, args ...any) error {
	return &badRequest{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// requestInfo is what the router needs from a request body.
type requestInfo struct {
	model string
	// units is -1 when only the response can tell (audio-to-text without a
	// WAV header).
	units int64
}

// bodyFields are the body fields the router looks at, from JSON or multipart.
type bodyFields struct {
	present   map[string]bool
	models    map[string]string // model_id / model
	height    int64             // 0 = absent
	width     int64
	numImages int64
	maxTokens int64
	textRunes int64
	imageH    int64 // decoded from the image part; 0 = unknown
	imageW    int64
	audioMs   int64 // from a WAV header; 0 = unknown
}

// checkMediaType refuses a Content-Type the capability does not take
// (the router answers 415 before reading the body): multipart endpoints
// take multipart/form-data; JSON endpoints take application/json, any
// application/*+json, or no Content-Type at all (curl --data-binary and
// go-livepeer's own clients send JSON without one).
func checkMediaType(spec capSpec, contentType string) error {
	mediaType, _, err := mime.ParseMediaType(contentType)
	switch spec.body {
	case bodyMultipart:
		if err != nil || mediaType != "multipart/form-data" {
			return badf(reasonMediaType, "%s takes multipart/form-data, got Content-Type %q", spec.name, contentType)
		}
	default:
		if contentType == "" {
			return nil
		}
		if err != nil || !(mediaType == "application/json" || strings.HasPrefix(mediaType, "application/") && strings.HasSuffix(mediaType, "+json")) {
			return badf(reasonMediaType, "%s takes a JSON body (Content-Type: application/json), got Content-Type %q", spec.name, contentType)
		}
	}
	return nil
}

// parseRequest reads the model and the units from a request body. The body
// is not modified; the orchestrator gets it byte for byte. Errors are
// *badRequest.
func parseRequest(spec capSpec, cc CapabilityConfig, contentType string, body []byte) (requestInfo, error) {
	f := bodyFields{present: map[string]bool{}, models: map[string]string{}}
	if err := checkMediaType(spec, contentType); err != nil {
		return requestInfo{}, err
	}
	_, params, _ := mime.ParseMediaType(contentType)
	switch spec.body {
	case bodyMultipart:
		if err := parseMultipart(&f, params["boundary"], body); err != nil {
			return requestInfo{}, err
		}
	default:
		if err := parseJSON(&f, body); err != nil {
			return requestInfo{}, err
		}
	}
	for _, name := range spec.required {
		if !f.present[name] {
			return requestInfo{}, badf("missing_field", "missing required field: %s", name)
		}
	}
	info := requestInfo{model: cc.DefaultModel}
	for _, name := range spec.modelFields {
		if m := f.models[name]; m != "" {
			info.model = m
			break
		}
	}
	info.units = units(spec, cc, &f)
	return info, nil
}

// units applies the capability's unit rule (see the package documentation).
func units(spec capSpec, cc CapabilityConfig, f *bodyFields) int64 {
	n := int64(1)
	if spec.imagesField && f.numImages > 0 {
		n = f.numImages
	}
	orDefault := func(v int64, d int) int64 {
		if v > 0 {
			return v
		}
		return int64(d)
	}
	switch spec.units {
	case unitsRequestedPixels:
		return orDefault(f.height, cc.DefaultHeight) * orDefault(f.width, cc.DefaultWidth) * n
	case unitsImagePixels:
		if f.imageH > 0 && f.imageW > 0 {
			return f.imageH * f.imageW * n
		}
		return int64(cc.DefaultHeight) * int64(cc.DefaultWidth) * n
	case unitsVideoPixels:
		return orDefault(f.height, cc.DefaultHeight) * orDefault(f.width, cc.DefaultWidth) * int64(cc.Frames)
	case unitsAudioMillis:
		if f.audioMs > 0 {
			return f.audioMs
		}
		return -1
	case unitsMaxTokens:
		return orDefault(f.maxTokens, cc.DefaultMaxTokens)
	case unitsCharacters:
		return f.textRunes
	}
	return 0
}

// parseJSON reads a JSON object body. Keys match exactly (as the Python
// runners do), unlike encoding/json's case-insensitive struct matching.
func parseJSON(f *bodyFields, body []byte) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return badf("invalid_json", "invalid JSON body: expected a JSON object")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return badf("invalid_json", "invalid JSON body: %v", err)
	}
	for key, raw := range obj {
		if isJSONNull(raw) {
			continue // null is absent, as the runners' optional fields treat it
		}
		var err error
		switch key {
		case "model_id", "model":
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return badf("invalid_field", "invalid field %s: must be a string", key)
			}
			err = setModel(f, key, s)
		case "height", "width", "num_images_per_prompt", "max_tokens":
			err = setInt(f, key, jsonNumberText(raw))
		case "text":
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return badf("invalid_field", "invalid field text: must be a string")
			}
			f.textRunes = int64(utf8.RuneCountInString(s))
		}
		if err != nil {
			return err
		}
		f.present[key] = true
	}
	return nil
}

func isJSONNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// jsonNumberText returns a JSON number's text, or a JSON string's content so
// "512" is accepted as the runners' lax integer parsing accepts it.
func jsonNumberText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(bytes.TrimSpace(raw))
}

func setModel(f *bodyFields, key, s string) error {
	if len(s) > maxModelLen || !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return badf("invalid_field", "invalid field %s: must be at most %d bytes of printable UTF-8", key, maxModelLen)
	}
	f.models[key] = s
	return nil
}

func setInt(f *bodyFields, key, text string) error {
	limit := int64(maxDim)
	switch key {
	case "num_images_per_prompt":
		limit = maxImages
	case "max_tokens":
		limit = maxTokens
	}
	v, ok := parseCount(text)
	if !ok || v < 1 || v > limit {
		return badf("invalid_field", "invalid field %s: must be an integer in 1..%d", key, limit)
	}
	switch key {
	case "height":
		f.height = v
	case "width":
		f.width = v
	case "num_images_per_prompt":
		f.numImages = v
	case "max_tokens":
		f.maxTokens = v
	}
	return nil
}

// parseCount accepts an integer, or a float with no fractional part.
func parseCount(text string) (int64, bool) {
	text = strings.TrimSpace(text)
	if v, err := strconv.ParseInt(text, 10, 64); err == nil {
		return v, true
	}
	fv, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(fv) || math.IsInf(fv, 0) || fv != math.Trunc(fv) || math.Abs(fv) > 1<<53 {
		return 0, false
	}
	return int64(fv), true
}

// parseMultipart reads a multipart/form-data body part by part. File parts
// are read only as far as their header (image size, WAV duration).
func parseMultipart(f *bodyFields, boundary string, body []byte) error {
	if boundary == "" {
		return badf("invalid_multipart", "invalid multipart body: no boundary in Content-Type")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for parts := 0; ; parts++ {
		if parts >= maxParts {
			return badf("invalid_multipart", "invalid multipart body: more than %d parts", maxParts)
		}
		// NextRawPart: the runners see the bytes as sent, so read them so too.
		p, err := mr.NextRawPart()
		if err == io.EOF { // exactly: a wrapped EOF is a body cut short
			return nil
		}
		if err != nil {
			return badf("invalid_multipart", "invalid multipart body: %v", err)
		}
		name := p.FormName()
		if f.present[name] {
			continue // the first occurrence wins
		}
		var ferr error
		switch name {
		case "model_id", "model":
			var v string
			if v, ferr = readField(p, name); ferr == nil {
				ferr = setModel(f, name, v)
			}
		case "height", "width", "num_images_per_prompt", "max_tokens":
			var v string
			if v, ferr = readField(p, name); ferr == nil {
				ferr = setInt(f, name, v)
			}
		case "text":
			n, err := countRunes(p)
			if err != nil {
				return badf("invalid_multipart", "invalid multipart body: %v", err)
			}
			f.textRunes = n
		case "image":
			f.imageH, f.imageW = imageSize(p)
		case "audio":
			f.audioMs = wavDurationMs(p)
		}
		if ferr != nil {
			return ferr
		}
		// Drain what the decoders left, so a truncated part is an error here
		// and not a surprise at the orchestrator.
		if _, err := io.Copy(io.Discard, p); err != nil {
			return badf("invalid_multipart", "invalid multipart body: %v", err)
		}
		if name != "" {
			f.present[name] = true
		}
	}
}

func readField(p io.Reader, name string) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, maxFieldLen+1))
	if err != nil {
		return "", badf("invalid_multipart", "invalid multipart body: %v", err)
	}
	if len(b) > maxFieldLen {
		return "", badf("invalid_field", "invalid field %s: longer than %d bytes", name, maxFieldLen)
	}
	return string(b), nil
}

func countRunes(r io.Reader) (int64, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	return int64(utf8.RuneCount(b)), nil
}
