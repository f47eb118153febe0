package load

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/loopgate/loopgate/sim/scenario"
)

// TestPayloadUnits checks that every capability's body carries what the
// router needs and counts exactly the class's units.
func TestPayloadUnits(t *testing.T) {
	tests := []struct {
		capability string
		units      float64
		multipart  bool
		file       string // multipart file field
		units0     func(t *testing.T, fields map[string]string, file []byte, js map[string]any) float64
	}{
		{"text-to-image", 1048576, false, "", jsonPixels},
		{"text-to-image", 768 * 1344, false, "", jsonPixels},
		{"llm", 256, false, "", func(t *testing.T, _ map[string]string, _ []byte, js map[string]any) float64 {
			if _, ok := js["messages"].([]any); !ok {
				t.Error("llm: no messages")
			}
			return js["max_tokens"].(float64)
		}},
		{"text-to-speech", 120, false, "", func(t *testing.T, _ map[string]string, _ []byte, js map[string]any) float64 {
			return float64(utf8.RuneCountInString(js["text"].(string)))
		}},
		{"image-to-image", 262144, true, "image", pngPixels},
		{"upscale", 512 * 768, true, "image", pngPixels},
		{"segment-anything-2", 1048576, true, "image", pngPixels},
		{"image-to-text", 262144, true, "image", pngPixels},
		{"image-to-video", 576 * 1024 * 25, true, "image", func(t *testing.T, f map[string]string, _ []byte, _ map[string]any) float64 {
			h, _ := strconv.Atoi(f["height"])
			w, _ := strconv.Atoi(f["width"])
			return float64(h * w * videoFrames)
		}},
		{"audio-to-text", 30000, true, "audio", wavMillis},
	}
	for _, tt := range tests {
		t.Run(tt.capability+"/"+strconv.FormatFloat(tt.units, 'f', -1, 64), func(t *testing.T) {
			cls := scenario.Class{ID: "c", Capability: tt.capability, Model: "org/model", Units: tt.units}
			p, err := buildPayload(cls)
			if err != nil {
				t.Fatal(err)
			}
			if p.path != "/"+tt.capability {
				t.Errorf("path: got %s, want /%s", p.path, tt.capability)
			}
			var fields map[string]string
			var file []byte
			var js map[string]any
			mt, params, _ := mime.ParseMediaType(p.contentType)
			if tt.multipart {
				if mt != "multipart/form-data" {
					t.Fatalf("content type: got %s, want multipart/form-data", p.contentType)
				}
				fields, file = readMultipart(t, p.body, params["boundary"], tt.file)
				if fields["model_id"] != "org/model" {
					t.Errorf("model_id: got %q", fields["model_id"])
				}
			} else {
				if mt != "application/json" {
					t.Fatalf("content type: got %s, want application/json", p.contentType)
				}
				if err := json.Unmarshal(p.body, &js); err != nil {
					t.Fatal(err)
				}
				if js["model_id"] != "org/model" {
					t.Errorf("model_id: got %v", js["model_id"])
				}
			}
			if got := tt.units0(t, fields, file, js); got != tt.units {
				t.Errorf("units: got %v, want %v", got, tt.units)
			}
		})
	}
}

func TestDims(t *testing.T) {
	tests := []struct {
		pixels float64
		h, w   int
	}{
		{1048576, 1024, 1024},
		{768 * 1344, 1008, 1024}, // the squarest factorisation
		{1000003, 1000, 1000},    // prime: the nearest square
		{0, 512, 512},
	}
	for _, tt := range tests {
		if h, w := dims(tt.pixels); h != tt.h || w != tt.w {
			t.Errorf("dims(%v): got %d×%d, want %d×%d", tt.pixels, h, w, tt.h, tt.w)
		}
	}
}

func jsonPixels(t *testing.T, _ map[string]string, _ []byte, js map[string]any) float64 {
	return js["height"].(float64) * js["width"].(float64)
}

func pngPixels(t *testing.T, _ map[string]string, file []byte, _ map[string]any) float64 {
	cfg, err := png.DecodeConfig(bytes.NewReader(file))
	if err != nil {
		t.Fatalf("image: %v", err)
	}
	return float64(cfg.Height * cfg.Width)
}

// wavMillis reads the duration the router reads: data bytes / byte rate.
func wavMillis(t *testing.T, _ map[string]string, file []byte, _ map[string]any) float64 {
	if len(file) < 44 || string(file[0:4]) != "RIFF" || string(file[8:16]) != "WAVEfmt " || string(file[36:40]) != "data" {
		t.Fatalf("not a canonical WAV header: %q", file[:min(len(file), 44)])
	}
	byteRate := binary.LittleEndian.Uint32(file[28:32])
	size := binary.LittleEndian.Uint32(file[40:44])
	if int(size) != len(file)-44 {
		t.Errorf("data chunk says %d bytes, has %d", size, len(file)-44)
	}
	return float64(int64(size) * 1000 / int64(byteRate))
}

func readMultipart(t *testing.T, body []byte, boundary, fileField string) (map[string]string, []byte) {
	t.Helper()
	fields := map[string]string{}
	var file []byte
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part)
		if part.FormName() == fileField && part.FileName() != "" {
			file = b
			continue
		}
		fields[part.FormName()] = string(b)
	}
	if file == nil {
		t.Fatalf("no %s file part", fileField)
	}
	return fields, file
}
