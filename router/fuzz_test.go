package router

import (
	"bytes"
	"errors"
	"mime"
	"mime/multipart"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// checkParsed holds for anything parseRequest accepts or refuses.
func checkParsed(t *testing.T, spec capSpec, info requestInfo, err error) {
	t.Helper()
	if err != nil {
		var br *badRequest
		if !errors.As(err, &br) || br.reason == "" || br.msg == "" {
			t.Fatalf("got error %T %v, want a *badRequest with a reason", err, err)
		}
		return
	}
	if info.model == "" || len(info.model) > maxModelLen || !utf8.ValidString(info.model) {
		t.Fatalf("got model %q, want 1..%d bytes of UTF-8", info.model, maxModelLen)
	}
	if info.units < 0 && !(info.units == -1 && spec.units == unitsAudioMillis) {
		t.Fatalf("got units %d for %s", info.units, spec.name)
	}
}

func FuzzParseJSON(f *testing.F) {
	f.Add(uint8(0), []byte(`{"prompt":"a cat","model_id":"m","height":1024,"width":768,"num_images_per_prompt":3}`))
	f.Add(uint8(7), []byte(`{"model":"llama","messages":[{"role":"user","content":"hi"}],"max_tokens":77}`))
	f.Add(uint8(8), []byte(`{"text":"héllo","model_id":null}`))
	f.Add(uint8(0), []byte(`{"prompt":"x","height":"1e3","width":64.0}`))
	f.Add(uint8(0), []byte(`[]`))
	specs := capSpecs()
	cfg := DefaultConfig().normalized()
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		spec := specs[int(which)%len(specs)]
		info, err := parseRequest(spec, cfg.Capabilities[spec.name], "application/json", body)
		checkParsed(t, spec, info, err)
		if spec.body == bodyMultipart && err == nil {
			t.Fatal("a multipart capability accepted a JSON body")
		}
	})
}

func FuzzParseMultipart(f *testing.F) {
	seed := func(which uint8, fields map[string]string, files map[string][]byte) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		_ = mw.SetBoundary("fuzzboundary")
		for k, v := range fields {
			_ = mw.WriteField(k, v)
		}
		for k, v := range files {
			fw, _ := mw.CreateFormFile(k, k)
			_, _ = fw.Write(v)
		}
		_ = mw.Close()
		f.Add(which, "fuzzboundary", b.Bytes())
	}
	seed(1, map[string]string{"prompt": "x", "model_id": "m", "num_images_per_prompt": "2"}, map[string][]byte{"image": pngOf(3, 2)})
	seed(3, map[string]string{"prompt": "x"}, map[string][]byte{"image": jpegOf(8, 8)})
	seed(2, map[string]string{"height": "256", "width": "128"}, map[string][]byte{"image": gifOf(2, 2)})
	seed(4, nil, map[string][]byte{"audio": wav(100 * time.Millisecond)})
	seed(4, nil, map[string][]byte{"audio": []byte("RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00")})
	f.Add(uint8(5), "b", []byte("--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n\x89PNG\r\n\x1a\n\r\n--b--\r\n"))
	specs := capSpecs()
	cfg := DefaultConfig().normalized()
	f.Fuzz(func(t *testing.T, which uint8, boundary string, body []byte) {
		spec := specs[int(which)%len(specs)]
		ct := "multipart/form-data; boundary=\"" + boundary + "\""
		info, err := parseRequest(spec, cfg.Capabilities[spec.name], ct, body)
		checkParsed(t, spec, info, err)
		if spec.body == bodyJSON && err == nil {
			t.Fatal("a JSON capability accepted a multipart body")
		}
	})
}

func FuzzWAVDuration(f *testing.F) {
	f.Add(wav(250 * time.Millisecond))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80>\x00\x00\x00}\x00\x00\x02\x00\x10\x00data\xff\xff\xff\xff\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ms := wavDurationMs(bytes.NewReader(b)); ms < 0 {
			t.Fatalf("got %d ms", ms)
		}
	})
}

func FuzzImageSize(f *testing.F) {
	f.Add(pngOf(3, 4))
	f.Add(jpegOf(5, 6))
	f.Add(gifOf(7, 8))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, w := imageSize(bytes.NewReader(b))
		if h < 0 || w < 0 || h > maxDim || w > maxDim || (h == 0) != (w == 0) {
			t.Fatalf("got %d×%d", h, w)
		}
	})
}

func FuzzAudioMsFromResponse(f *testing.F) {
	f.Add([]byte(`{"text":"x","chunks":[{"timestamp":[0,1.5]},{"timestamp":[1.5,null]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ms, ok := audioMsFromResponse(b); ok && ms <= 0 || !ok && ms != 0 {
			t.Fatalf("got %d, %v", ms, ok)
		}
	})
}

// FuzzCheckMediaType: any Content-Type is accepted or refused without a
// panic; what a JSON endpoint accepts is absent or JSON, what a multipart
// one accepts is multipart/form-data; and parseRequest refuses exactly
// what checkMediaType refuses.
func FuzzCheckMediaType(f *testing.F) {
	for _, ct := range []string{"", "application/json", "application/json; charset=utf-8", "application/vnd.api+json", "text/plain",
		"multipart/form-data; boundary=x", "multipart/mixed; boundary=x", "application/", ";;", "APPLICATION/JSON"} {
		f.Add(uint8(0), ct)
		f.Add(uint8(1), ct)
	}
	specs := capSpecs()
	cfg := DefaultConfig().normalized()
	f.Fuzz(func(t *testing.T, which uint8, ct string) {
		spec := specs[int(which)%len(specs)]
		err := checkMediaType(spec, ct)
		if err == nil && ct != "" {
			mt, _, perr := mime.ParseMediaType(ct)
			ok := perr == nil && (spec.body == bodyMultipart && mt == "multipart/form-data" ||
				spec.body == bodyJSON && (mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")))
			if !ok {
				t.Fatalf("%s accepted Content-Type %q", spec.name, ct)
			}
		}
		if err == nil && ct == "" && spec.body == bodyMultipart {
			t.Fatalf("%s accepted no Content-Type", spec.name)
		}
		_, perr := parseRequest(spec, cfg.Capabilities[spec.name], ct, []byte(`{}`))
		var br *badRequest
		refused := errors.As(perr, &br) && br.reason == reasonMediaType
		if refused != (err != nil) {
			t.Fatalf("%s, Content-Type %q: checkMediaType %v, parseRequest %v", spec.name, ct, err, perr)
		}
	})
}
