package event

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrTooLarge is returned for an encoded event over MaxEncodedSize, or a
// policy over MaxPolicyEncodedSize.
var ErrTooLarge = errors.New("event too large")

// ErrSchemaVersion is returned for an event whose schema version this
// package cannot read.
var ErrSchemaVersion = errors.New("unsupported schema version")

// ErrMalformed is returned when the bytes are not a JSON event at all.
var ErrMalformed = errors.New("malformed event")

// EncodeOutcome validates o and returns its JSON encoding. A zero Schema is
// set to SchemaVersion.
func EncodeOutcome(o Outcome) ([]byte, error) {
	if o.Schema == 0 {
		o.Schema = SchemaVersion
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encode outcome %s: %w", o.ID, err)
	}
	if len(b) > MaxEncodedSize {
		return nil, fmt.Errorf("encode outcome %s: %w: %d bytes, limit %d", o.ID, ErrTooLarge, len(b), MaxEncodedSize)
	}
	return b, nil
}

// DecodeOutcome parses and validates one encoded outcome. Unknown fields are
// ignored. The error wraps ErrTooLarge, ErrMalformed, ErrSchemaVersion or is
// a *ValidationError.
func DecodeOutcome(b []byte) (Outcome, error) {
	return DecodeOutcomeWith(b, json.Unmarshal)
}

// DecodeOutcomeWith is DecodeOutcome with another JSON decoder in place of
// encoding/json's Unmarshal — one that must give the same result for every
// input (ingest plugs in a faster one). The size limit, the schema-version
// check and validation are this package's, unchanged.
func DecodeOutcomeWith(b []byte, unmarshal func([]byte, any) error) (Outcome, error) {
	var o Outcome
	if err := decode(b, MaxEncodedSize, &o, &o.Schema, unmarshal); err != nil {
		return Outcome{}, err
	}
	if err := o.Validate(); err != nil {
		return Outcome{}, err
	}
	return o, nil
}

// EncodePolicy validates p and returns its JSON encoding.
func EncodePolicy(p Policy) ([]byte, error) {
	if p.Schema == 0 {
		p.Schema = SchemaVersion
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode policy %d: %w", p.Version, err)
	}
	if len(b) > MaxPolicyEncodedSize {
		// What a decoder would refuse must not be published.
		return nil, fmt.Errorf("encode policy %d: %w: %d bytes, limit %d", p.Version, ErrTooLarge, len(b), MaxPolicyEncodedSize)
	}
	return b, nil
}

// DecodePolicy parses and validates one encoded policy, of at most
// MaxPolicyEncodedSize bytes.
func DecodePolicy(b []byte) (Policy, error) {
	var p Policy
	if err := decode(b, MaxPolicyEncodedSize, &p, &p.Schema, json.Unmarshal); err != nil {
		return Policy{}, err
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

func decode(b []byte, limit int, v any, schema *int, unmarshal func([]byte, any) error) error {
	if len(b) > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), limit)
	}
	if err := unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if *schema < MinSchemaVersion || *schema > SchemaVersion {
		return fmt.Errorf("%w: %d (this build reads %d..%d)", ErrSchemaVersion, *schema, MinSchemaVersion, SchemaVersion)
	}
	return nil
}
