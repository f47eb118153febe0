package ingest

import (
	"fmt"
	"unicode/utf8"

	"github.com/bytedance/sonic"

	"github.com/loopgate/loopgate/event"
)

// decodeOutcome is event.DecodeOutcome with a faster JSON decoder: profiles
// of the event path showed decoding was most of ingest's CPU. bytedance/sonic
// (JIT and SIMD on amd64 and arm64, encoding/json elsewhere), configured as
// encoding/json behaves (sonic.ConfigStd: unknown fields ignored, keys
// matched case-insensitively), fills an Outcome several times faster. Its
// decoder is laxer on syntax than encoding/json (a bad escape in a skipped
// field passes), so the bytes are first checked by sonic.Valid, a strict
// RFC 8259 validator; bytes that are not valid UTF-8 go straight to
// encoding/json, which replaces the bad sequences with U+FFFD.
//
// The fast path only ever accepts: whatever it refuses, fails to validate
// or panics on is decoded again by event.DecodeOutcome, whose answer
// stands. So a message is rejected exactly when encoding/json rejects it,
// with encoding/json's error in its dead letter.
// FuzzDecodeOutcomeSameAsEvent checks that both decoders agree on every
// input.
func decodeOutcome(b []byte) (event.Outcome, error) {
	o, err := event.DecodeOutcomeWith(b, fastUnmarshal)
	if err != nil {
		return event.DecodeOutcome(b)
	}
	return o, nil
}

// errNotForFastPath sends a message to encoding/json.
var errNotForFastPath = fmt.Errorf("left to encoding/json")

func fastUnmarshal(b []byte, v any) (err error) {
	if !utf8.Valid(b) || !sonic.Valid(b) {
		return errNotForFastPath
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("json decoder panic: %v", r)
		}
	}()
	return sonic.ConfigStd.Unmarshal(b, v)
}
