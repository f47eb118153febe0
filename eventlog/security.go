package eventlog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/loopgate/loopgate/internal/secret"
	"github.com/loopgate/loopgate/internal/tlsconf"
)

// SASL mechanisms, for SASL.Mechanism.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Security is how every connection to the brokers is made: TLS, SASL, both
// (Kafka's SASL_SSL), or neither (PLAINTEXT, the zero value). Every reader,
// writer, publisher, policy log and topic admin of this package takes one,
// so one setting covers all of a process's Kafka connections.
type Security struct {
	// TLS encrypts the connections and verifies the brokers' certificates.
	TLS tlsconf.Config `yaml:"tls"`
	// SASL authenticates the client. Over plaintext it sends the password
	// (PLAIN) or a proof of it (SCRAM) unencrypted: use it with TLS.
	SASL SASL `yaml:"sasl"`
}

// SASL is a SASL client identity.
type SASL struct {
	// Mechanism is "" (no SASL), "PLAIN", "SCRAM-SHA-256" or
	// "SCRAM-SHA-512". Default "".
	Mechanism string `yaml:"mechanism"`
	// Username. Required with a mechanism.
	Username string `yaml:"username"`
	// Password, for a process that has it already (from the environment:
	// the binary reads LOOPGATE_KAFKA_SASL_PASSWORD). Never in a config
	// file, never printed.
	Password secret.String `yaml:"-"`
	// PasswordFile holds the password (one line), read when a connection is
	// configured; used when Password is empty. Default empty.
	PasswordFile string `yaml:"password_file"`
}

// Validate reports settings that cannot work. It does not read files.
func (s Security) Validate() error {
	var errs []error
	if err := s.TLS.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch s.SASL.Mechanism {
	case "":
		if s.SASL.Username != "" || s.SASL.Password.IsSet() || s.SASL.PasswordFile != "" {
			errs = append(errs, errors.New("sasl: credentials are set but sasl.mechanism is empty"))
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if s.SASL.Username == "" {
			errs = append(errs, fmt.Errorf("sasl: %s needs a username", s.SASL.Mechanism))
		}
		if !s.SASL.Password.IsSet() && s.SASL.PasswordFile == "" {
			errs = append(errs, fmt.Errorf("sasl: %s needs a password (password_file or the environment)", s.SASL.Mechanism))
		}
	default:
		errs = append(errs, fmt.Errorf("sasl: mechanism %q: want %s, %s or %s", s.SASL.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafka security: %w", err)
	}
	return nil
}

// client is Security resolved: the TLS config and SASL mechanism kafka-go
// takes, each nil when off.
type client struct {
	tls  *tls.Config
	sasl sasl.Mechanism
}

// resolve reads the files Security names and builds the kafka-go values.
func (s Security) resolve() (client, error) {
	if err := s.Validate(); err != nil {
		return client{}, err
	}
	tc, err := s.TLS.Load()
	if err != nil {
		return client{}, fmt.Errorf("kafka security: %w", err)
	}
	c := client{tls: tc}
	if s.SASL.Mechanism == "" {
		return c, nil
	}
	pw := s.SASL.Password
	if !pw.IsSet() {
		if pw, err = secret.FromFile(s.SASL.PasswordFile); err != nil {
			return client{}, fmt.Errorf("kafka security: sasl password: %w", err)
		}
	}
	switch s.SASL.Mechanism {
	case SASLPlain:
		c.sasl = plain.Mechanism{Username: s.SASL.Username, Password: pw.Reveal()}
	case SASLScramSHA256, SASLScramSHA512:
		algo := scram.SHA256
		if s.SASL.Mechanism == SASLScramSHA512 {
			algo = scram.SHA512
		}
		if c.sasl, err = scram.Mechanism(algo, s.SASL.Username, pw.Reveal()); err != nil {
			// The error is about the username's or password's characters
			// (SASLprep), not their values.
			return client{}, fmt.Errorf("kafka security: %s for user %s: %w", s.SASL.Mechanism, s.SASL.Username, err)
		}
	}
	return c, nil
}

// explain adds the cause of err when it is the handshake: kafka-go's
// Transport reports a refused SASL login or a failed TLS handshake as
// "Broker Not Available" once it asks for the controller, so with security
// on, a failed request is followed by one direct dial of the first broker,
// whose error names the real cause (e.g. "SASL Authentication Failed").
func (c client) explain(ctx context.Context, brokers []string, err error) error {
	if err == nil || (c.tls == nil && c.sasl == nil) || len(brokers) == 0 || ctx.Err() != nil {
		return err
	}
	conn, derr := c.dialer().DialContext(ctx, "tcp", brokers[0])
	if derr != nil {
		return fmt.Errorf("%w (connecting to %s: %v)", err, brokers[0], derr)
	}
	conn.Close()
	return err
}

// transport is a kafka-go Transport (for Clients and Writers) with the
// security applied.
func (c client) transport() *kafka.Transport {
	return &kafka.Transport{ClientID: "loopgate", TLS: c.tls, SASL: c.sasl}
}

// dialer is a kafka-go Dialer (for Readers) with the security applied and
// kafka-go's default timeouts.
func (c client) dialer() *kafka.Dialer {
	return &kafka.Dialer{ClientID: "loopgate", Timeout: 10 * time.Second, DualStack: true, TLS: c.tls, SASLMechanism: c.sasl}
}
