package router

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math"
)

// imageSize decodes only the header of a PNG, JPEG or GIF image (no pixel
// data is decoded or allocated). It returns 0, 0 for anything else; the
// caller then bills the configured default size and leaves the verdict on
// the image to the orchestrator.
func imageSize(r io.Reader) (h, w int64) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(8)
	var decode func(io.Reader) (image.Config, error)
	switch {
	case bytes.HasPrefix(magic, []byte("\x89PNG\r\n\x1a\n")):
		decode = png.DecodeConfig
	case bytes.HasPrefix(magic, []byte("\xff\xd8")):
		decode = jpeg.DecodeConfig
	case bytes.HasPrefix(magic, []byte("GIF8")):
		decode = gif.DecodeConfig
	default:
		return 0, 0
	}
	cfg, err := decode(br)
	if err != nil || cfg.Height <= 0 || cfg.Width <= 0 || cfg.Height > maxDim || cfg.Width > maxDim {
		return 0, 0
	}
	return int64(cfg.Height), int64(cfg.Width)
}

// wavDurationMs reads a RIFF/WAVE header and returns the duration of its
// data chunk in milliseconds, or 0 if r is not a WAV it understands. A data
// chunk with an unknown size (0 or 0xFFFFFFFF, as streaming writers leave
// it) is measured by reading to the end.
func wavDurationMs(r io.Reader) int64 {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return 0
	}
	var byteRate uint32
	for chunks := 0; chunks < 64; chunks++ {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return 0
		}
		size := binary.LittleEndian.Uint32(ch[4:8])
		switch string(ch[0:4]) {
		case "fmt ":
			if size < 16 || size > 1<<16 {
				return 0
			}
			fmtChunk := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, fmtChunk); err != nil {
				return 0
			}
			byteRate = binary.LittleEndian.Uint32(fmtChunk[8:12])
		case "data":
			if byteRate == 0 {
				return 0
			}
			n := int64(size)
			if size == 0 || size == math.MaxUint32 {
				read, err := io.Copy(io.Discard, r)
				if err != nil {
					return 0
				}
				n = read
			}
			return n * 1000 / int64(byteRate)
		default:
			skip := int64(size) + int64(size%2)
			if k, err := io.CopyN(io.Discard, r, skip); err != nil || k != skip {
				return 0
			}
		}
	}
	return 0
}

// maxCaptureBytes bounds the response bytes kept to read an audio-to-text
// duration after the response has been relayed.
const maxCaptureBytes = 1 << 20

// audioMsFromResponse reads the duration of transcribed audio from an
// audio-to-text response: the largest chunk timestamp, in seconds, as the
// Livepeer runner reports {"text": ..., "chunks": [{"timestamp": [start, end], ...}]}.
func audioMsFromResponse(b []byte) (int64, bool) {
	var resp struct {
		Chunks []struct {
			Timestamp []*float64 `json:"timestamp"`
		} `json:"chunks"`
	}
	if json.Unmarshal(b, &resp) != nil {
		return 0, false
	}
	best := -1.0
	for _, c := range resp.Chunks {
		for _, t := range c.Timestamp {
			if t != nil && *t > best && *t < 1e7 { // < ~115 days: anything bigger is not a duration
				best = *t
			}
		}
	}
	if best <= 0 {
		return 0, false
	}
	return int64(math.Round(best * 1000)), true
}
