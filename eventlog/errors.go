package eventlog

import "errors"

// ErrClosed is returned by calls on a Publisher, Reader or Writer after Close.
var ErrClosed = errors.New("eventlog: closed")

// ErrDropped is returned by Publish when the event could be neither queued in
// memory nor written to the spill (the spill is at MaxSpillBytes, or the disk
// is full or failing). The Publisher has already counted the drop in
// loopgate_eventlog_publisher_dropped_total and logged it; callers need not
// log it again.
var ErrDropped = errors.New("eventlog: event dropped")

// ErrTooLarge is returned by Publish and Write for a message over the
// configured MaxMessageBytes. Nothing is sent or spilled.
var ErrTooLarge = errors.New("eventlog: message too large")
