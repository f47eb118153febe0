package eventlog

import (
	"time"

	"github.com/segmentio/kafka-go"
)

// Message is one Kafka record as this package reads and writes it, so that
// callers never import kafka-go.
type Message struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	Time      time.Time // record timestamp; a zero Time is set to now when written
	// Generation is the consumer-group generation a Reader fetched the
	// message in (Reader.Hold, Reader.Commit); 0 for messages not fetched
	// by a Reader. Writers ignore it.
	Generation int64
}

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

func fromKafka(m kafka.Message) Message {
	out := Message{
		Topic:     m.Topic,
		Partition: m.Partition,
		Offset:    m.Offset,
		Key:       m.Key,
		Value:     m.Value,
		Time:      m.Time,
	}
	if len(m.Headers) > 0 {
		out.Headers = make([]Header, len(m.Headers))
		for i, h := range m.Headers {
			out.Headers[i] = Header{Key: h.Key, Value: h.Value}
		}
	}
	return out
}

// commitRef is the part of a Message that a commit needs.
func commitRef(m Message) kafka.Message {
	return kafka.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
}
