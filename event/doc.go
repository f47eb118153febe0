// Package event defines loopgate's wire types: the Outcome of one client
// request (with every attempt it made) and the routing Policy the optimizer
// publishes. These are the records of the event log; every other component
// speaks them.
//
// Encoding is JSON with an explicit schema version. A decoder accepts any
// schema version from MinSchemaVersion to SchemaVersion, ignores fields it
// does not know (so a newer producer can add fields without breaking older
// consumers), and rejects events that fail validation with an error that says
// which field is wrong and why:
//
//	b, err := event.EncodeOutcome(o)     // validates, then marshals
//	o, err := event.DecodeOutcome(b)     // size check, unmarshal, version, validate
//	var ve *event.ValidationError
//	if errors.As(err, &ve) { ... ve.Field, ve.Reason ... }
//
// All times are Unix milliseconds (UTC); all money is USD as float64; units
// follow go-livepeer (pixels for images, max_tokens for llm, milliseconds of
// audio for audio-to-text, characters for text-to-speech).
//
// The package has no dependencies beyond the standard library.
package event
