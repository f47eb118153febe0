// Package ingest moves outcome events from Kafka into the warehouse.
//
// An Ingester reads loopgate.outcomes through a consumer group, decodes and
// validates each message, and writes valid outcomes to its Sink in batches
// (by default 10,000 rows or 1 s, whichever comes first). Offsets are
// committed only after the Sink has said the batch is durable, so a crash at
// any point re-delivers, and never loses, what was not yet committed; the
// Sink's write contract (warehouse.Store: writing the same outcomes again
// adds no rows) turns that re-delivery into exactly-once rows.
//
// Fetching, decoding and writing overlap: while one batch is written and
// committed, the next is decoded (by Config.DecodeWorkers goroutines in
// parallel) and the one after is fetched, up to Config.Pipeline batches
// waiting behind the writer; while they are all taken, the fetcher keeps
// filling the next batch up to BatchRows instead of cutting it at
// BatchWait, so a busy warehouse gets fewer, larger writes. There is still
// one writer, and batches are
// committed in fetch order, each only after its own write returned: a
// commit never moves an offset past a row that is not durable. Decoding
// uses bytedance/sonic behind a strict validity check and falls back to
// event.DecodeOutcome for anything it does not accept, so what is accepted
// and rejected is exactly encoding/json's (json.go).
//
// With several ingest processes in one consumer group, partitions move
// when a process joins, leaves or dies. Each batch is written and
// committed inside a Hold of its messages' group generation (Holder,
// eventlog.Reader.Hold): the group does not give the partitions to another
// process until the write under way has returned and been committed, and a
// batch fetched in a generation that has ended is dropped uncommitted, for
// the new owner to read again. Batches never mix generations. So one id is
// only ever written by one process at a time, which is what the Sink's
// check-then-insert needs to stay exact.
//
// Messages that cannot be decoded — not JSON, an unsupported schema version,
// too large, invalid fields — are copied to the dead-letter topic with the
// error in their headers, counted, and committed with the batch: one bad
// message never stalls its partition.
//
// While the Sink fails (ClickHouse down), the Ingester stops fetching and
// retries the same batch with capped exponential backoff; nothing is
// committed and nothing is dropped until the write succeeds.
//
//	ing, err := ingest.New(ingest.DefaultConfig(), reader, store, dlqWriter, deps.Deps{Logger: logger, Registerer: reg})
//	if err != nil { ... }
//	err = ing.Run(ctx) // returns when ctx is cancelled, after flushing what it holds
//
// A LivepeerAdapter (NewLivepeer) follows the same rules for stock
// go-livepeer's own gateway topic (-kafkaGatewayTopic): it decodes
// create_new_payment, discovery_results, network_capabilities,
// stream_trace, ai_stream_status and ai_stream_events (DecodeLivepeer,
// exact on wei) into a LivepeerSink (warehouse.Store.WriteLivepeer),
// dead-letters what cannot be stored and counts and skips unknown types.
// See docs/LIVEPEER.md; its metrics are loopgate_ingest_livepeer_*.
//
// Metrics (registered on the injected registry):
//
//	loopgate_ingest_messages_total{result}      messages read: ok, dead_letter
//	loopgate_ingest_rows_written_total          outcomes the sink accepted
//	loopgate_ingest_batch_size                  histogram of outcomes per batch
//	loopgate_ingest_batch_write_seconds         histogram of sink write latency (successful writes)
//	loopgate_ingest_write_errors_total          failed sink writes (each is retried)
//	loopgate_ingest_dead_letters_total{reason}  messages sent to the DLQ by reason
//	loopgate_ingest_consumer_lag                messages between the group's committed offsets and the
//	                                            partition ends, asked of the brokers every LagInterval
//	                                            (so it grows while the warehouse is down)
//	loopgate_ingest_last_commit_timestamp_seconds
//	loopgate_ingest_revoked_messages_total      messages dropped uncommitted because their partitions
//	                                            moved to another ingest process first (re-read there)
package ingest
