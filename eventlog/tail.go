package eventlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/segmentio/kafka-go"
)

// Tail reads one partition from its first record onwards, without a
// consumer group and without commits: every process that needs the whole
// topic (the router reading the compacted policy topic) reads all of it.
type Tail struct {
	r *kafka.Reader
}

// NewTail returns a Tail on partition of topic. A nil logger discards logs.
func NewTail(brokers []string, topic string, partition int, logger *slog.Logger) (*Tail, error) {
	if len(brokers) == 0 {
		return nil, errors.New("tail: no brokers")
	}
	if err := validTopicName(topic); err != nil {
		return nil, fmt.Errorf("tail: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With(logKeyTopic, topic)
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     brokers,
		Topic:       topic,
		Partition:   partition,
		StartOffset: kafka.FirstOffset,
		MaxWait:     DefaultReaderConfig().MaxWait,
		Logger:      kafkaLogger(logger, slog.LevelDebug, "kafka tail"),
		ErrorLogger: kafkaLogger(logger, slog.LevelWarn, "kafka tail error"),
	})
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		r.Close()
		return nil, fmt.Errorf("tail %s: %w", topic, err)
	}
	return &Tail{r: r}, nil
}

// Fetch returns the next record, blocking until one arrives, ctx ends or
// the Tail is closed (ErrClosed).
func (t *Tail) Fetch(ctx context.Context) (Message, error) {
	m, err := t.r.FetchMessage(ctx)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Message{}, ErrClosed
		}
		return Message{}, err
	}
	return fromKafka(m), nil
}

// Close stops reading.
func (t *Tail) Close() error { return t.r.Close() }
