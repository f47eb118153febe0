package router

import (
	"bytes"
	"errors"
	"image"
	"image/gif"
	"image/jpeg"
	"mime/multipart"
	"strings"
	"testing"
	"time"

	"github.com/loopgate/loopgate/event"
)

func capCfg(name string) (capSpec, CapabilityConfig) {
	spec, _ := capSpecByName(name)
	return spec, DefaultConfig().normalized().Capabilities[name]
}

func TestParseJSON(t *testing.T) {
	tests := []struct {
		name      string
		cap       string
		body      string
		wantModel string
		wantUnits int64
		wantErr   string // badRequest reason
	}{
		{"t2i defaults", event.CapTextToImage, `{"prompt":"a cat"}`, "stabilityai/sdxl-turbo", 512 * 512, ""},
		{"t2i sizes", event.CapTextToImage, `{"prompt":"a cat","model_id":"m","height":1024,"width":768,"num_images_per_prompt":3}`, "m", 1024 * 768 * 3, ""},
		{"t2i integral float and numeric string", event.CapTextToImage, `{"prompt":"x","height":64.0,"width":"32"}`, "stabilityai/sdxl-turbo", 64 * 32, ""},
		{"t2i nulls are absent", event.CapTextToImage, `{"prompt":"x","model_id":null,"height":null}`, "stabilityai/sdxl-turbo", 512 * 512, ""},
		{"empty model is absent", event.CapTextToImage, `{"prompt":"x","model_id":""}`, "stabilityai/sdxl-turbo", 512 * 512, ""},
		{"keys are case-sensitive", event.CapTextToImage, `{"prompt":"x","MODEL_ID":"m","Height":9}`, "stabilityai/sdxl-turbo", 512 * 512, ""},
		{"llm model field", event.CapLLM, `{"model":"llama","messages":[],"max_tokens":77}`, "llama", 77, ""},
		{"llm model_id wins", event.CapLLM, `{"model_id":"a","model":"b","messages":[]}`, "a", 256, ""},
		{"tts characters", event.CapTextToSpeech, `{"text":"héllo wörld"}`, "parler-tts/parler-tts-large-v1", 11, ""},
		{"not an object", event.CapTextToImage, `"prompt"`, "", 0, "invalid_json"},
		{"empty", event.CapTextToImage, ``, "", 0, "invalid_json"},
		{"trailing garbage", event.CapTextToImage, `{"prompt":"x"} {}`, "", 0, "invalid_json"},
		{"missing prompt", event.CapTextToImage, `{"height":8}`, "", 0, "missing_field"},
		{"null prompt is missing", event.CapTextToImage, `{"prompt":null}`, "", 0, "missing_field"},
		{"llm without messages", event.CapLLM, `{"model":"x"}`, "", 0, "missing_field"},
		{"fractional height", event.CapTextToImage, `{"prompt":"x","height":1.5}`, "", 0, "invalid_field"},
		{"negative width", event.CapTextToImage, `{"prompt":"x","width":-1}`, "", 0, "invalid_field"},
		{"huge height", event.CapTextToImage, `{"prompt":"x","height":1e300}`, "", 0, "invalid_field"},
		{"too many images", event.CapTextToImage, `{"prompt":"x","num_images_per_prompt":100000}`, "", 0, "invalid_field"},
		{"long model", event.CapTextToImage, `{"prompt":"x","model_id":"` + strings.Repeat("m", 300) + `"}`, "", 0, "invalid_field"},
		{"control characters in model", event.CapTextToImage, `{"prompt":"x","model_id":"a\nb"}`, "", 0, "invalid_field"},
		{"text not a string", event.CapTextToSpeech, `{"text":5}`, "", 0, "invalid_field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, cc := capCfg(tt.cap)
			info, err := parseRequest(spec, cc, "application/json", []byte(tt.body))
			checkParse(t, info, err, tt.wantModel, tt.wantUnits, tt.wantErr)
		})
	}
}

func checkParse(t *testing.T, info requestInfo, err error, model string, units int64, reason string) {
	t.Helper()
	if reason != "" {
		var br *badRequest
		if !errors.As(err, &br) || br.reason != reason {
			t.Fatalf("got %v, want a bad request %q", err, reason)
		}
		return
	}
	if err != nil {
		t.Fatalf("got %v, want no error", err)
	}
	if info.model != model || info.units != units {
		t.Fatalf("got model %q units %d, want %q %d", info.model, info.units, model, units)
	}
}

func jpegOf(h, w int) []byte {
	var b bytes.Buffer
	_ = jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, w, h)), nil)
	return b.Bytes()
}

func gifOf(h, w int) []byte {
	var b bytes.Buffer
	_ = gif.Encode(&b, image.NewGray(image.Rect(0, 0, w, h)), nil)
	return b.Bytes()
}

func TestParseMultipart(t *testing.T) {
	tests := []struct {
		name      string
		cap       string
		fields    map[string]string
		files     map[string][]byte
		wantModel string
		wantUnits int64
		wantErr   string
	}{
		{"i2i png × images", event.CapImageToImage, map[string]string{"prompt": "x", "model_id": "m", "num_images_per_prompt": "2"}, map[string][]byte{"image": pngOf(30, 20)}, "m", 30 * 20 * 2, ""},
		{"upscale jpeg", event.CapUpscale, map[string]string{"prompt": "x"}, map[string][]byte{"image": jpegOf(48, 64)}, "stabilityai/stable-diffusion-x4-upscaler", 48 * 64, ""},
		{"sam2 gif", event.CapSegmentAnything2, nil, map[string][]byte{"image": gifOf(10, 11)}, "facebook/sam2-hiera-large", 110, ""},
		{"image-to-text undecodable image: default size", event.CapImageToText, nil, map[string][]byte{"image": []byte("RIFF....WEBPVP8 ")}, "Salesforce/blip-image-captioning-large", 512 * 512, ""},
		{"i2v defaults", event.CapImageToVideo, nil, map[string][]byte{"image": pngOf(5, 5)}, "stabilityai/stable-video-diffusion-img2vid-xt", 576 * 1024 * 25, ""},
		{"i2v sizes", event.CapImageToVideo, map[string]string{"height": "256", "width": "128"}, map[string][]byte{"image": pngOf(5, 5)}, "stabilityai/stable-video-diffusion-img2vid-xt", 256 * 128 * 25, ""},
		{"audio wav", event.CapAudioToText, map[string]string{"model_id": "w"}, map[string][]byte{"audio": wav(2 * time.Second)}, "w", 2000, ""},
		{"audio unknown until the response", event.CapAudioToText, nil, map[string][]byte{"audio": []byte("fLaC")}, "openai/whisper-large-v3", -1, ""},
		{"missing image", event.CapUpscale, map[string]string{"prompt": "x"}, nil, "", 0, "missing_field"},
		{"bad height", event.CapImageToVideo, map[string]string{"height": "big"}, map[string][]byte{"image": pngOf(5, 5)}, "", 0, "invalid_field"},
		{"long field", event.CapImageToImage, map[string]string{"prompt": "x", "model_id": strings.Repeat("m", maxFieldLen+1)}, map[string][]byte{"image": pngOf(5, 5)}, "", 0, "invalid_field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, cc := capCfg(tt.cap)
			ct, body := multipartBody(t, tt.fields, tt.files)
			info, err := parseRequest(spec, cc, ct, body)
			checkParse(t, info, err, tt.wantModel, tt.wantUnits, tt.wantErr)
		})
	}
	t.Run("truncated", func(t *testing.T) {
		spec, cc := capCfg(event.CapUpscale)
		ct, body := multipartBody(t, map[string]string{"prompt": "x"}, map[string][]byte{"image": pngOf(5, 5)})
		_, err := parseRequest(spec, cc, ct, body[:len(body)-10])
		checkParse(t, requestInfo{}, err, "", 0, "invalid_multipart")
	})
	t.Run("no boundary", func(t *testing.T) {
		spec, cc := capCfg(event.CapUpscale)
		_, err := parseRequest(spec, cc, "multipart/form-data", []byte("x"))
		checkParse(t, requestInfo{}, err, "", 0, "invalid_multipart")
	})
	t.Run("too many parts", func(t *testing.T) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for range maxParts + 1 {
			_ = mw.WriteField("x", "y")
		}
		_ = mw.Close()
		spec, cc := capCfg(event.CapUpscale)
		_, err := parseRequest(spec, cc, mw.FormDataContentType(), b.Bytes())
		checkParse(t, requestInfo{}, err, "", 0, "invalid_multipart")
	})
}

func TestWAVDuration(t *testing.T) {
	w := wav(1500 * time.Millisecond)
	streaming := bytes.Clone(w)
	copy(streaming[len(streaming)-48000-4:], []byte{0xff, 0xff, 0xff, 0xff}) // unknown data size
	tests := []struct {
		name string
		in   []byte
		want int64
	}{
		{"pcm", w, 1500},
		{"unknown data size is measured", streaming, 1500},
		{"not riff", []byte("OggS...."), 0},
		{"truncated header", w[:20], 0},
		{"data before fmt", append([]byte("RIFF\x00\x00\x00\x00WAVEdata\x04\x00\x00\x00"), 1, 2, 3, 4), 0},
	}
	for _, tt := range tests {
		if got := wavDurationMs(bytes.NewReader(tt.in)); got != tt.want {
			t.Errorf("%s: got %d ms, want %d", tt.name, got, tt.want)
		}
	}
}

func TestAudioMsFromResponse(t *testing.T) {
	tests := []struct {
		in     string
		want   int64
		wantOK bool
	}{
		{`{"chunks":[{"timestamp":[0,1.5]},{"timestamp":[1.5,4.25]}]}`, 4250, true},
		{`{"chunks":[{"timestamp":[2.0,null]}]}`, 2000, true},
		{`{"chunks":[]}`, 0, false},
		{`{"chunks":[{"timestamp":[-3]}]}`, 0, false},
		{`{"chunks":[{"timestamp":[1e308]}]}`, 0, false},
		{`not json`, 0, false},
	}
	for _, tt := range tests {
		if got, ok := audioMsFromResponse([]byte(tt.in)); got != tt.want || ok != tt.wantOK {
			t.Errorf("%s: got %d %v, want %d %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
