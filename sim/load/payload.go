package load

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"maps"
	"math"
	"mime/multipart"
	"slices"
	"strings"

	"github.com/loopgate/loopgate/sim/scenario"
)

// Limits that keep a generated body plausible and small enough.
const (
	maxDim         = 1 << 16 // pixels per side (the router's limit)
	maxImagePixels = 1 << 26 // a larger image is sent at 512×512
	maxAudioBytes  = 16 << 20
	maxTextRunes   = 1 << 20
	videoFrames    = 25 // the router's default frames per video (go-livepeer's)
	audioByteRate  = 1000
)

// payload is the request sent for one class: built once, sent every time
// (bodies are read-only, so concurrent requests share them).
type payload struct {
	path        string
	contentType string
	body        []byte
}

// buildPayload makes a plausible go-livepeer request for a class, sized so
// the router counts the class's units: pixels as height × width (one image),
// llm max_tokens, text-to-speech characters, audio-to-text milliseconds of a
// WAV (8-bit mono at 1 kHz: one byte per ms). JSON for text-to-image, llm and
// text-to-speech, multipart/form-data for the others, as the router wants.
func buildPayload(cls scenario.Class) (payload, error) {
	p := payload{path: "/" + cls.Capability, contentType: "application/json"}
	units := math.Round(cls.Units)
	var fields map[string]any
	switch cls.Capability {
	case "text-to-image":
		h, w := dims(units)
		fields = map[string]any{"model_id": cls.Model, "prompt": "a lighthouse on a cliff at dawn, oil painting",
			"height": h, "width": w, "num_images_per_prompt": 1}
	case "llm":
		fields = map[string]any{"model_id": cls.Model, "model": cls.Model, "max_tokens": int64(max(units, 1)), "stream": false,
			"messages": []any{
				map[string]string{"role": "system", "content": "You are a helpful assistant."},
				map[string]string{"role": "user", "content": "Explain in one paragraph how a lighthouse works."},
			}}
	case "text-to-speech":
		fields = map[string]any{"model_id": cls.Model, "text": speechText(int(min(units, maxTextRunes))),
			"description": "A calm, clear voice."}
	case "image-to-image", "upscale", "segment-anything-2", "image-to-text":
		h, w := dims(units)
		img, err := blankPNG(h, w)
		if err != nil {
			return payload{}, err
		}
		return multipartPayload(p.path, map[string]string{"model_id": cls.Model, "prompt": "make it look like winter"},
			"image", "image.png", "image/png", img)
	case "image-to-video":
		h, w := dims(units / videoFrames)
		img, err := blankPNG(h, w)
		if err != nil {
			return payload{}, err
		}
		return multipartPayload(p.path, map[string]string{"model_id": cls.Model, "height": fmt.Sprint(h), "width": fmt.Sprint(w)},
			"image", "image.png", "image/png", img)
	case "audio-to-text":
		return multipartPayload(p.path, map[string]string{"model_id": cls.Model},
			"audio", "audio.wav", "audio/wav", silentWAV(int64(min(units, maxAudioBytes))))
	default: // a capability the format allows but Livepeer does not name
		fields = map[string]any{"model_id": cls.Model, "prompt": "hello"}
	}
	b, err := json.Marshal(fields)
	if err != nil {
		return payload{}, fmt.Errorf("class %s: %w", cls.ID, err)
	}
	p.body = b
	return p, nil
}

// dims factors a pixel count into height × width, as square as it can with
// both sides ≤ maxDim; a prime count is approximated by a square.
func dims(pixels float64) (h, w int) {
	n := int64(math.Round(pixels))
	if n < 1 {
		return 512, 512
	}
	s := int64(math.Sqrt(float64(n)))
	for hh := s; hh >= 1 && s-hh < 1<<12; hh-- {
		if n%hh == 0 && n/hh <= maxDim {
			return int(hh), int(n / hh)
		}
	}
	s = min(max(int64(math.Round(math.Sqrt(float64(n)))), 1), maxDim)
	return int(s), int(s)
}

// blankPNG encodes a black h×w PNG (a few KB at most: it compresses away).
func blankPNG(h, w int) ([]byte, error) {
	if int64(h)*int64(w) > maxImagePixels {
		h, w = 512, 512
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		return nil, fmt.Errorf("encode %d×%d png: %w", w, h, err)
	}
	return b.Bytes(), nil
}

// silentWAV is ms milliseconds of silence: 8-bit mono PCM at 1000 Hz.
func silentWAV(ms int64) []byte {
	data := max(ms, 1) * audioByteRate / 1000
	var b bytes.Buffer
	le := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(36 + data))
	b.WriteString("WAVEfmt ")
	le(uint32(16))            // fmt chunk size
	le(uint16(1))             // PCM
	le(uint16(1))             // mono
	le(uint32(audioByteRate)) // sample rate
	le(uint32(audioByteRate)) // byte rate
	le(uint16(1))             // block align
	le(uint16(8))             // bits per sample
	b.WriteString("data")
	le(uint32(data))
	b.Write(bytes.Repeat([]byte{0x80}, int(data))) // 8-bit PCM silence
	return b.Bytes()
}

// speechText is n characters of English.
func speechText(n int) string {
	const s = "The quick brown fox jumps over the lazy dog. "
	n = max(n, 1)
	return strings.Repeat(s, n/len(s)+1)[:n]
}

func multipartPayload(path string, fields map[string]string, fileField, fileName, fileType string, file []byte) (payload, error) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if err := mw.WriteField(k, fields[k]); err != nil {
			return payload{}, err
		}
	}
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name=%q; filename=%q`, fileField, fileName)}
	h["Content-Type"] = []string{fileType}
	fw, err := mw.CreatePart(h)
	if err != nil {
		return payload{}, err
	}
	if _, err := fw.Write(file); err != nil {
		return payload{}, err
	}
	if err := mw.Close(); err != nil {
		return payload{}, err
	}
	return payload{path: path, contentType: mw.FormDataContentType(), body: b.Bytes()}, nil
}
