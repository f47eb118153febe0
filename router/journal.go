package router

import (
	"encoding/json"
	"fmt"

	"github.com/loopgate/loopgate/event"
)

// journalAttempt is one ended attempt as the journal keeps it: the attempt
// and the orchestrator's price, which billing needs.
type journalAttempt struct {
	Attempt event.Attempt `json:"attempt"`
	Price   float64       `json:"price"`
}

// journalBegin records x as accepted: its outcome as it stands before any
// attempt, marked interrupted, which is what a crash leaves of it.
func (r *Router) journalBegin(x *exchange) {
	if r.journal == nil {
		return
	}
	o := x.outcome(x.start)
	o.Status, o.ErrorClass, o.HTTPStatus = event.StatusInterrupted, "interrupted", 0
	b, err := event.EncodeOutcome(o)
	if err == nil {
		err = r.journal.Begin(x.id, b)
	}
	if err != nil {
		r.m.journalErrors.Inc()
		r.log.Warn("request not journaled", logKeyID, x.id, logKeyErr, err)
	}
}

// journalAttempt records x's last attempt, ended.
func (r *Router) journalAttempt(x *exchange) {
	if r.journal == nil || len(x.attempts) == 0 {
		return
	}
	i := len(x.attempts) - 1
	b, err := json.Marshal(journalAttempt{Attempt: x.attempts[i], Price: x.prices[i]})
	if err == nil {
		err = r.journal.Attempt(x.id, b)
	}
	if err != nil {
		r.m.journalErrors.Inc()
		r.log.Warn("attempt not journaled", logKeyID, x.id, logKeyErr, err)
	}
}

// journalDone records that x's outcome is with the publisher.
func (r *Router) journalDone(x *exchange) {
	if r.journal == nil {
		return
	}
	if err := r.journal.Done(x.id); err != nil {
		r.m.journalErrors.Inc()
		r.log.Warn("request end not journaled", logKeyID, x.id, logKeyErr, err)
	}
}

// Interrupted rebuilds the outcome of a request a crash interrupted, from
// what the journal kept of it (begin: Begin's record; attempts: Attempt's,
// in order): status interrupted, the attempts known, billed by the same
// rule as a finished request, ended when its last known attempt ended.
// The caller publishes it and marks the request Done.
func (r *Router) Interrupted(begin []byte, attempts [][]byte) (event.Outcome, error) {
	o, err := event.DecodeOutcome(begin)
	if err != nil {
		return event.Outcome{}, fmt.Errorf("journaled request: %w", err)
	}
	fast := r.snap.Load().cfg.FastFailure
	end := o.StartMs
	for i, b := range attempts {
		var ja journalAttempt
		if err := json.Unmarshal(b, &ja); err != nil {
			return event.Outcome{}, fmt.Errorf("journaled attempt %d of %s: %w", i, o.ID, err)
		}
		a := ja.Attempt
		a.Billed = billed(a, fast)
		a.Cost = 0
		if a.Billed {
			a.Cost = ja.Price * float64(o.Units)
			o.Cost += a.Cost
		}
		o.Attempts = append(o.Attempts, a)
		o.PricePerUnit = ja.Price
		end = max(end, a.StartMs+a.LatencyMs)
	}
	o.Status, o.ErrorClass = event.StatusInterrupted, "interrupted"
	o.EndMs, o.LatencyMs = end, end-o.StartMs
	return o, nil
}

// PublishInterrupted publishes the interrupted outcome of a journaled
// request and marks it done; see Interrupted.
func (r *Router) PublishInterrupted(id string, begin []byte, attempts [][]byte) error {
	o, err := r.Interrupted(begin, attempts)
	if err != nil {
		return err
	}
	if o.ID != id {
		return fmt.Errorf("journaled request %s holds outcome %s", id, o.ID)
	}
	b, err := event.EncodeOutcome(o)
	if err != nil {
		return fmt.Errorf("interrupted outcome %s: %w", id, err)
	}
	if err := r.pub.Publish([]byte(o.ID), b); err != nil {
		return fmt.Errorf("publish interrupted outcome %s: %w", id, err)
	}
	r.m.interrupted.Inc()
	if r.journal != nil {
		return r.journal.Done(id)
	}
	return nil
}
