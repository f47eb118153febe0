package sim

import "time"

// eventKind says what happens at an event.
type eventKind uint8

const (
	evTimeline       eventKind = iota // apply timeline entries at this time
	evReach                           // an attempt reaches its orchestrator
	evDone                            // an orchestrator finishes serving an attempt
	evReply                           // a reply (or refusal) reaches the router
	evDeadline                        // the client's timeout for a request
	evHedge                           // the hedge timer of an attempt
	evRepick                          // a policy asked to be asked again
	evAttemptTimeout                  // a policy's per-attempt timeout
)

// event is one entry of the simulator's agenda. Events at the same time run
// in the order they were scheduled (seq), which keeps runs deterministic.
type event struct {
	at   time.Duration
	seq  uint64
	kind eventKind
	att  *attempt
	req  int32
}

// agenda is a binary min-heap of events by (at, seq). It is hand-written
// rather than container/heap so that pushing does not box every event.
type agenda struct {
	ev  []event
	seq uint64
}

func (h *agenda) less(i, j int) bool {
	a, b := &h.ev[i], &h.ev[j]
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (h *agenda) push(e event) {
	h.seq++
	e.seq = h.seq
	h.ev = append(h.ev, e)
	i := len(h.ev) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h.ev[i], h.ev[p] = h.ev[p], h.ev[i]
		i = p
	}
}

func (h *agenda) pop() event {
	top := h.ev[0]
	n := len(h.ev) - 1
	h.ev[0] = h.ev[n]
	h.ev = h.ev[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h.less(l, m) {
			m = l
		}
		if r < n && h.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		h.ev[i], h.ev[m] = h.ev[m], h.ev[i]
		i = m
	}
	return top
}

func (h *agenda) len() int { return len(h.ev) }

func (h *agenda) peek() time.Duration { return h.ev[0].at }
