// Package eventlog is loopgate's Kafka layer: the topics of the event log,
// a durable non-blocking Publisher for the router's outcome stream, a
// consumer-group Reader with explicit commits for ingest, the PolicyLog
// that the optimizer publishes to and every router follows, a synchronous
// Writer for the dead-letter topic, and an embedded broker for development
// and tests. Constructors take the component's config and its deps.Deps
// (logger, registry, clock). It is built on
// github.com/segmentio/kafka-go; callers see only this package's types.
//
// # Topics
//
//	loopgate.outcomes      one event.Outcome per request, keyed by request id (6 partitions)
//	loopgate.policy        every event.Policy, compacted (1 partition), max.message.bytes PolicyMaxMessageBytes
//	loopgate.outcomes.dlq  outcomes ingest could not store (1 partition)
//
// EnsureTopics creates the missing ones and leaves existing ones alone.
//
// # Security (TLS, SASL)
//
// Every config of the package that reaches the brokers (ReaderConfig,
// WriterConfig, PublisherConfig, PolicyLogConfig, TopicsConfig) has a
// Security field, applied to every kafka-go Dialer and Transport it builds:
//
//	sec := eventlog.Security{
//		TLS:  tlsconf.Config{Enabled: true, CAFile: "/etc/loopgate/ca.pem"},
//		SASL: eventlog.SASL{Mechanism: eventlog.SASLScramSHA512, Username: "loopgate", PasswordFile: "/run/secrets/kafka"},
//	}
//	rcfg.Security, wcfg.Security, pcfg.Security = sec, sec, sec
//
// The zero value is plaintext without authentication (and what the embedded
// broker speaks). The password is a secret.String: it never appears in a
// printed config, a log line or an error.
//
// # Publishing (router)
//
//	cfg := eventlog.DefaultPublisherConfig()
//	cfg.Brokers = []string{"kafka-1:9092"}
//	cfg.SpillDir = "/var/lib/loopgate/spill" // survives restarts
//	pub, err := eventlog.NewPublisher(cfg, deps.Deps{Logger: logger, Registerer: prometheus.DefaultRegisterer})
//	if err != nil { ... }
//	g.Go(func() error { return pub.Run(ctx) }) // the send loop; returns on cancel
//
//	b, _ := event.EncodeOutcome(o)
//	_ = pub.Publish([]byte(o.ID), b) // never waits for Kafka
//
//	// at shutdown, after the HTTP server has drained:
//	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
//	defer cancel()
//	err = pub.Close(shutdownCtx) // sends what it can, spills the rest
//
// # The policy log (optimizer → routers)
//
//	pcfg := eventlog.DefaultPolicyLogConfig()
//	pcfg.Brokers = brokers
//	plog, err := eventlog.NewPolicyLog(pcfg, d)
//	err = plog.Publish(ctx, encoded)                  // the optimizer's one encoding; nil once acknowledged
//	go plog.Follow(ctx, func(b []byte) { ... })      // the newest policy, then every later one
//	<-plog.CaughtUp()                                 // the newest has been delivered (or the log is empty)
//
// The log carries bytes: the router decodes and validates each policy once.
// A restarted follower starts from the newest record, so it applies one
// policy, not the history; the topic is compacted on one key (PolicyKey).
//
// # A lease (standby optimizer)
//
//	l, err := eventlog.NewLease(eventlog.LeaseConfig{Brokers: brokers, Group: "loopgate.optimizer", ...}, d)
//	err = l.Run(ctx, func(ctx context.Context, epoch int64) error { ... }) // called while this member holds it
//
// Lease is Kafka group membership on a one-partition topic: the member
// given partition 0 holds it for that generation, and the generation id is
// its epoch. See Lease for how fast it moves and what a holder cut off from
// the coordinator may still believe.
//
// # Reading (ingest)
//
//	rcfg := eventlog.DefaultReaderConfig()
//	rcfg.Brokers, rcfg.Topic, rcfg.GroupID = brokers, eventlog.TopicOutcomes, "ingest"
//	r, err := eventlog.NewReader(rcfg, deps.Deps{Logger: logger, Registerer: reg})
//	defer r.Close()
//	for {
//		m, err := r.Fetch(ctx)
//		if err != nil { return err }
//		batch = append(batch, m)
//		if full(batch) {
//			hctx, release, err := r.Hold(ctx, batch) // the partitions stay ours until release
//			if errors.Is(err, eventlog.ErrRevoked) { batch = batch[:0]; continue } // moved: the new owner reads it
//			if err := store(hctx, batch); err != nil { release(); return err } // durable first,
//			if err := r.Commit(hctx, batch...); err != nil { release(); return err } // then commit
//			release()
//			batch = batch[:0]
//		}
//	}
//
// Commit only what has been handled. Commits are synchronous round trips
// (a few milliseconds on Kafka): commit per stored batch, not per message.
//
// The Reader is a kafka-go ConsumerGroup with one partition reader per
// assigned partition. Every Message carries the group generation it was
// fetched in; when a member joins or leaves, the generation ends on every
// member, and kafka-go lets a member rejoin only after that member's open
// Holds are released. So while one member holds a batch, no other member
// reads its partitions, and a batch fetched in an ended generation is
// refused by Hold and by Commit: two members never handle the same record
// at once. Keep a batch within one generation (a record with a new
// Generation starts a new batch), and keep a Hold under RebalanceTimeout.
//
// # Publisher ordering
//
// For each key, the order in Kafka is the order of the Publish calls (as
// serialized by the Publisher's lock) — across broker outages, overflow of
// the memory queue into the spill, Close, and process restarts. Events with
// no key have no order. The Publisher keeps one FIFO (a batch in flight,
// then the memory queue, then the spill segments on disk) and always sends
// from its front; a key maps to one partition (kafka-go's Hash balancer,
// FNV-1a as in sarama) and each partition has at most one produce request
// in flight, retried as a whole. When a batch fails, the events held in
// memory are written to a spill segment that sorts before all others, and
// new events go to the end of the spill until it has been replayed; a spill
// left by a previous run is replayed before any new event. The limit: if the
// topic's partition count changes, keys move to other partitions and events
// published around the change may interleave differently.
//
// # Publisher durability
//
// Delivery is at-least-once. A batch whose acknowledgement was lost (broker
// crash, a timeout, Close cutting a request short) is sent again, so
// consumers must tolerate duplicates (outcomes carry unique ids). An event
// is in exactly one of three places until Kafka acknowledges it:
//
//   - In memory (at most MaxQueuedBytes, default 64 MiB): lost if the
//     process dies without Close (SIGKILL, OOM kill, panic, power loss).
//   - In the spill: written with one write(2) per event (no fsync), so it
//     survives a crash of the process but not of the machine until it is
//     synced. Segments moved from memory after a failure are fsynced; Close
//     fsyncs everything.
//   - In Kafka, acknowledged by all in-sync replicas (acks=all).
//
// Close sends what Kafka accepts while its context allows, writes every
// remaining event to the spill, fsyncs it and returns nil: after Close
// returns nil nothing is lost, and the next Publisher on the same SpillDir
// sends it first. An event is dropped only when the spill cannot take it
// (MaxSpillBytes, default 1 GiB, reached; or the disk is full or failing):
// Publish then returns an error wrapping ErrDropped, and the drop is counted
// and logged. An event the broker refuses for good (larger than the topic's
// max.message.bytes, invalid) is counted as rejected and logged, since
// resending it would block every later event. Spill data that is torn (a
// crash in the middle of a write) or damaged is detected by length and
// CRC-32C framing, cut off at open and counted.
//
// Publish never waits for the network, but it takes a lock that the sender
// holds for in-memory bookkeeping and small disk operations, and while the
// spill is in use it writes to disk itself: a stalled disk stalls Publish.
//
// # Embedded broker
//
// StartEmbedded runs github.com/twmb/franz-go/pkg/kfake in-process on
// 127.0.0.1, one node, with DataDir persistence of the log, topics and group
// offsets, and creates the topics (the policy topic with
// cleanup.policy=compact, through kfake's CreateTopics, since kfake's
// SeedTopics option cannot set configs). kafka-go interoperates with it for
// everything this package uses: metadata, produce with acks=all and
// compression, fetch, consumer groups (JoinGroup v2, SyncGroup, Heartbeat,
// LeaveGroup), synchronous offset commits and fetches, CreateTopics with
// configs, DescribeConfigs; a restart on the same port and DataDir keeps the
// log and committed offsets, and clients reconnect. Two kfake defaults are
// changed: it starts three brokers (we start one) and refuses sessions under
// 6 s (we allow 1 s, so tests can use short sessions).
//
// Against Apache Kafka, note that kafka-go's Reader sets its socket deadline
// to MaxWait and asks the broker to wait a little less; a very small MaxWait
// (100 ms) leaves too little slack and fetches time out and reconnect,
// hence the 500 ms default.
//
// # Metrics
//
// All on the injected registry, with a constant topic label (and group for
// readers):
//
//	loopgate_eventlog_publisher_published_total       events acknowledged by Kafka
//	loopgate_eventlog_publisher_spilled_total         events written to the spill
//	loopgate_eventlog_publisher_replayed_total        acknowledged events that came from the spill
//	loopgate_eventlog_publisher_dropped_total         events lost: spill full or failing
//	loopgate_eventlog_publisher_rejected_total        events the broker refused for good
//	loopgate_eventlog_publisher_write_errors_total    batches not fully acknowledged
//	loopgate_eventlog_publisher_spill_corrupt_bytes_total  torn/damaged spill bytes cut off at open
//	loopgate_eventlog_publisher_queue_depth           events in memory (gauge)
//	loopgate_eventlog_publisher_queue_bytes           bytes in memory (gauge)
//	loopgate_eventlog_publisher_spill_events          events in the spill (gauge)
//	loopgate_eventlog_publisher_spill_bytes           bytes in the spill (gauge)
//	loopgate_eventlog_reader_fetched_total            messages returned by Fetch
//	loopgate_eventlog_reader_committed_total          messages committed
//	loopgate_eventlog_reader_fetch_errors_total       failed fetches
//	loopgate_eventlog_reader_commit_errors_total      failed commits
//	loopgate_eventlog_reader_stale_total              fetched records skipped: their generation had ended
//	loopgate_eventlog_reader_lag                      records behind the newest (gauge)
//	loopgate_eventlog_writer_written_total            messages acknowledged
//	loopgate_eventlog_writer_write_errors_total       produce attempts with unacknowledged messages
//
// PublisherStats gives the same numbers to tests and health checks; a spill
// is empty when SpillEvents and SpillBytes are 0.
package eventlog
