package eventlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// producer sends batches of records to one topic with acks=all. It is the
// part of the Publisher and the Writer that talks to Kafka, and it is built
// on kafka-go's Client rather than its Writer so that ordering is explicit:
// a batch is split by partition (kafka-go's Hash balancer on the key), every
// partition gets exactly one produce request in flight, and a failed request
// is retried as a whole, so records of one partition can never overtake one
// another inside a batch. Results come back per record.
//
// A producer is not safe for concurrent use; callers serialize produce.
type producer struct {
	topic       string
	compression kafka.Compression
	timeout     time.Duration // per produce request
	attempts    int           // per partition request, for retriable errors
	backoff     time.Duration // before the second attempt; doubles
	metadataTTL time.Duration

	transport *kafka.Transport
	client    *kafka.Client
	balancer  kafka.Hash

	partitions []int // cached partition ids of topic
	metaAt     time.Time
	now        func() time.Time
	groups     [][]int32 // record indexes per partition, reused
}

func newProducer(brokers []string, topic string, compression kafka.Compression, timeout time.Duration, now func() time.Time, sec client) *producer {
	tr := sec.transport()
	tr.MetadataTopics = []string{topic}
	// The transport answers metadata requests from a cache it refreshes at
	// random within this TTL; while the broker is down the cache holds the
	// error, so the TTL bounds how long recovery goes unnoticed (kafka-go's
	// default is 6 s).
	tr.MetadataTTL = 2 * time.Second
	return &producer{
		topic:       topic,
		now:         now,
		compression: compression,
		timeout:     timeout,
		attempts:    3,
		backoff:     100 * time.Millisecond,
		metadataTTL: 30 * time.Second,
		transport:   tr,
		client:      &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr, Timeout: timeout},
	}
}

func (p *producer) close() { p.transport.CloseIdleConnections() }

// partitionsFor returns the topic's partition ids, from a cache refreshed
// every metadataTTL and after any error.
func (p *producer) partitionsFor(ctx context.Context) ([]int, error) {
	if p.partitions != nil && p.now().Sub(p.metaAt) < p.metadataTTL {
		return p.partitions, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	md, err := p.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{p.topic}})
	if err != nil {
		return nil, fmt.Errorf("read metadata of %s: %w", p.topic, err)
	}
	for _, t := range md.Topics {
		if t.Name != p.topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("read metadata of %s: %w", p.topic, t.Error)
		}
		if len(t.Partitions) == 0 {
			return nil, fmt.Errorf("read metadata of %s: no partitions", p.topic)
		}
		// Kafka numbers partitions 0..n-1; the balancer picks one of the
		// ids and groups is indexed by it.
		ids := make([]int, len(t.Partitions))
		for i := range ids {
			ids[i] = i
		}
		p.partitions, p.metaAt = ids, p.now()
		return ids, nil
	}
	return nil, fmt.Errorf("read metadata of %s: %w", p.topic, kafka.UnknownTopicOrPartition)
}

// produce sends recs and reports per record: errs is nil when every record
// was acknowledged, otherwise errs[i] is nil for an acknowledged record and
// the partition's error for the others. err is set (and errs nil) when
// nothing was sent at all.
func (p *producer) produce(ctx context.Context, recs []record) (errs []error, err error) {
	parts, err := p.partitionsFor(ctx)
	if err != nil {
		return nil, err
	}
	if cap(p.groups) < len(parts) {
		p.groups = make([][]int32, len(parts))
	}
	groups := p.groups[:len(parts)]
	for i := range groups {
		groups[i] = groups[i][:0]
	}
	for i := range recs {
		part := p.balancer.Balance(kafka.Message{Key: recs[i].key}, parts...)
		groups[part] = append(groups[part], int32(i))
	}

	results := make([]error, len(parts))
	var wg sync.WaitGroup
	for part, idxs := range groups {
		if len(idxs) == 0 {
			continue
		}
		wg.Go(func() { results[part] = p.producePartition(ctx, part, recs, idxs) })
	}
	wg.Wait()

	for part, idxs := range groups {
		if results[part] == nil {
			continue
		}
		p.partitions = nil // refresh metadata after any error
		if errs == nil {
			errs = make([]error, len(recs))
		}
		for _, i := range idxs {
			errs[i] = results[part]
		}
	}
	return errs, nil
}

// producePartition sends the records idxs of recs to one partition, retrying
// the whole request on retriable errors.
func (p *producer) producePartition(ctx context.Context, part int, recs []record, idxs []int32) error {
	backoff := p.backoff
	for attempt := 1; ; attempt++ {
		err := p.produceOnce(ctx, part, recs, idxs)
		if err == nil {
			return nil
		}
		if attempt >= p.attempts || isPoison(err) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff *= 2
	}
}

func (p *producer) produceOnce(ctx context.Context, part int, recs []record, idxs []int32) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	resp, err := p.client.Produce(ctx, &kafka.ProduceRequest{
		Topic:        p.topic,
		Partition:    part,
		RequiredAcks: kafka.RequireAll,
		Compression:  p.compression,
		Records:      &recordReader{recs: recs, idxs: idxs},
	})
	if err != nil {
		return fmt.Errorf("produce %d records to %s/%d: %w", len(idxs), p.topic, part, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("produce %d records to %s/%d: %w", len(idxs), p.topic, part, resp.Error)
	}
	return nil
}

// isPoison reports whether err says the records themselves are
// unacceptable, so that sending them again can never succeed.
func isPoison(err error) bool {
	for _, e := range []kafka.Error{kafka.MessageSizeTooLarge, kafka.InvalidMessage, kafka.InvalidMessageSize,
		kafka.RecordListTooLarge, kafka.InvalidRecord, kafka.InvalidTimestamp} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// recordReader feeds records to kafka-go's produce request encoder without
// copying them or allocating per record.
type recordReader struct {
	recs       []record
	idxs       []int32
	i          int
	key, value bytesReadCloser
	rec        kafka.Record
}

func (r *recordReader) ReadRecord() (*kafka.Record, error) {
	if r.i >= len(r.idxs) {
		return nil, io.EOF
	}
	m := &r.recs[r.idxs[r.i]]
	r.i++
	r.rec = kafka.Record{Time: time.UnixMilli(m.timeMs)}
	if m.key != nil {
		r.key.Reset(m.key)
		r.rec.Key = &r.key
	}
	if m.value != nil {
		r.value.Reset(m.value)
		r.rec.Value = &r.value
	}
	if len(m.headers) > 0 {
		hs := make([]kafka.Header, len(m.headers))
		for i, h := range m.headers {
			hs[i] = kafka.Header{Key: h.Key, Value: h.Value}
		}
		r.rec.Headers = hs
	}
	return &r.rec, nil
}

type bytesReadCloser struct{ bytes.Reader }

func (*bytesReadCloser) Close() error { return nil }
