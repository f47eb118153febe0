package eventlog

import (
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// PublisherConfig configures a Publisher. Start from DefaultPublisherConfig
// and set Brokers and SpillDir.
type PublisherConfig struct {
	// Brokers are the Kafka bootstrap addresses (host:port). Required.
	Brokers []string
	// Topic receives the events. Default TopicOutcomes.
	Topic string
	// Security is how connections to the brokers are made (TLS, SASL).
	// Default: plaintext, no authentication.
	Security Security
	// SpillDir is the local directory events are spilled to while Kafka is
	// unreachable or the memory queue is full, and replayed from on the next
	// start. It must survive restarts (a volume, not tmpfs) and belong to one
	// Publisher at a time (it is locked). Required.
	SpillDir string
	// MaxQueuedBytes bounds the events held in memory, counting key, value
	// and 64 bytes of overhead per event. Beyond it events go to the spill.
	// Default 64 MiB.
	MaxQueuedBytes int64
	// MaxSpillBytes bounds the spill on disk. An event that does not fit is
	// dropped (and counted). Default 1 GiB.
	MaxSpillBytes int64
	// SpillSegmentBytes is the size at which the spill starts a new segment
	// file; sent segments are deleted whole. Default 16 MiB.
	SpillSegmentBytes int64
	// MaxMessageBytes is the largest key plus value Publish accepts.
	// Default 512 KiB (event.MaxEncodedSize is 256 KiB).
	MaxMessageBytes int
	// BatchSize is the most events sent in one batch. Default 1000.
	BatchSize int
	// BatchBytes is the most bytes (key, value and 64 bytes per event) in
	// one batch. It must stay below the topic's max.message.bytes (the
	// broker's message.max.bytes, 1 MiB, unless the topic sets it), which
	// applies to each partition's part of a batch: a batch over it is
	// refused and its events are then sent one by one. Default 900 KiB.
	BatchBytes int64
	// Linger is how long a batch that is not full waits for more events.
	// While a batch is in flight events queue up anyway, so this only
	// matters at low rates. Default 5 ms.
	Linger time.Duration
	// WriteTimeout bounds one produce request (and a metadata request).
	// Default 10 s.
	WriteTimeout time.Duration
	// RetryBackoff is the wait after a failed batch before the next attempt;
	// it doubles on each failure up to MaxRetryBackoff. Default 250 ms.
	RetryBackoff time.Duration
	// MaxRetryBackoff caps RetryBackoff. Default 5 s.
	MaxRetryBackoff time.Duration
	// Compression of record batches: "none", "gzip", "snappy", "lz4" or
	// "zstd". Default "none".
	Compression string
	// Durable writes every event to the spill before Publish returns, and
	// sends from there: an event Publish accepted survives SIGKILL of the
	// process (the write has reached the operating system's page cache) and
	// is sent on the next start. fsync policy: segments are synced when
	// they are closed (every SpillSegmentBytes) and on Close, not per
	// event, so a kernel crash or power loss can still lose the last
	// events. It costs one write(2) per event. Default false (events wait
	// in memory while Kafka is reachable).
	Durable bool
}

// DefaultPublisherConfig returns the defaults; Brokers and SpillDir are left
// empty.
func DefaultPublisherConfig() PublisherConfig {
	return PublisherConfig{
		Topic:             TopicOutcomes,
		MaxQueuedBytes:    64 << 20,
		MaxSpillBytes:     1 << 30,
		SpillSegmentBytes: 16 << 20,
		MaxMessageBytes:   512 << 10,
		BatchSize:         1000,
		BatchBytes:        900 << 10,
		Linger:            5 * time.Millisecond,
		WriteTimeout:      10 * time.Second,
		RetryBackoff:      250 * time.Millisecond,
		MaxRetryBackoff:   5 * time.Second,
		Compression:       "none",
	}
}

// maxSpillPayload bounds a frame's length field when reading the spill, so
// that damage cannot make the reader allocate gigabytes. It is fixed rather
// than derived from MaxMessageBytes so that a spill written under a larger
// limit still replays.
const maxSpillPayload = 64 << 20

// Validate reports the first invalid field, or nil.
func (c PublisherConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("Brokers is empty"))
	}
	if err := validTopicName(c.Topic); err != nil {
		errs = append(errs, fmt.Errorf("Topic: %w", err))
	}
	if c.SpillDir == "" {
		errs = append(errs, errors.New("SpillDir is empty"))
	}
	positive := []struct {
		name string
		v    int64
	}{
		{"MaxQueuedBytes", c.MaxQueuedBytes},
		{"MaxSpillBytes", c.MaxSpillBytes},
		{"SpillSegmentBytes", c.SpillSegmentBytes},
		{"MaxMessageBytes", int64(c.MaxMessageBytes)},
		{"BatchSize", int64(c.BatchSize)},
		{"BatchBytes", c.BatchBytes},
		{"WriteTimeout", int64(c.WriteTimeout)},
		{"RetryBackoff", int64(c.RetryBackoff)},
		{"MaxRetryBackoff", int64(c.MaxRetryBackoff)},
	}
	for _, f := range positive {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", f.name, f.v))
		}
	}
	if c.MaxMessageBytes > 16<<20 {
		errs = append(errs, fmt.Errorf("MaxMessageBytes %d over the 16 MiB this package supports", c.MaxMessageBytes))
	}
	if c.MaxMessageBytes > 0 && c.BatchBytes < int64(c.MaxMessageBytes)+recordOverhead {
		errs = append(errs, fmt.Errorf("BatchBytes %d cannot hold a message of MaxMessageBytes %d", c.BatchBytes, c.MaxMessageBytes))
	}
	if c.Linger < 0 {
		errs = append(errs, fmt.Errorf("Linger must not be negative, got %v", c.Linger))
	}
	if c.MaxRetryBackoff < c.RetryBackoff {
		errs = append(errs, fmt.Errorf("MaxRetryBackoff %v below RetryBackoff %v", c.MaxRetryBackoff, c.RetryBackoff))
	}
	if _, err := parseCompression(c.Compression); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("publisher config: %w", err)
	}
	return nil
}

func parseCompression(s string) (kafka.Compression, error) {
	switch s {
	case "", "none":
		return 0, nil
	case "gzip":
		return kafka.Gzip, nil
	case "snappy":
		return kafka.Snappy, nil
	case "lz4":
		return kafka.Lz4, nil
	case "zstd":
		return kafka.Zstd, nil
	}
	return 0, fmt.Errorf("unknown compression %q (want none, gzip, snappy, lz4 or zstd)", s)
}
