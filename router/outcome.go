package router

import (
	"net/http"
	"time"

	"github.com/loopgate/loopgate/event"
)

// exchange is one client request on its way through the router.
type exchange struct {
	s      *snapshot
	ci     *capInfo
	key    *apiKey
	region string
	body   []byte
	info   requestInfo
	id     string
	start  time.Time
	req    *http.Request
	table  *classTable
	// excluded are the class's orchestrators over the key's max price per unit.
	excluded []*orchEntry

	attempts []event.Attempt
	prices   []float64 // orchestrator price per unit, aligned with attempts

	// What the client got.
	wrote      bool // response headers written
	status     int  // HTTP status written
	ttfb       time.Duration
	bytesOut   int64
	final      event.Status
	errorClass string

	// For audio-to-text: the response, when the request did not tell the duration.
	captured []byte
}

func (x *exchange) httpStatus() int {
	if !x.wrote {
		return statusClientClosed
	}
	return x.status
}

// statusClientClosed is recorded when the client left before any response
// (nginx's 499; nothing is sent).
const statusClientClosed = 499

// finalUnits resolves the units once the response is known. Audio-to-text
// without a WAV duration in the request uses the response's last chunk
// timestamp, else the configured default.
func (x *exchange) finalUnits() int64 {
	if x.info.units >= 0 {
		return x.info.units
	}
	if ms, ok := audioMsFromResponse(x.captured); ok && x.final == event.StatusOK {
		return ms
	}
	return x.ci.cfg.DefaultAudioMs
}

// billed applies the billing rule to one attempt: a 2xx is billed; refused
// connections, 503 busy and 4xx are never billed; any other failure (5xx,
// timeout, a broken or abandoned response) is billed if it came at least
// FastFailure after the attempt started — before that, service cannot have
// begun.
func billed(a event.Attempt, fast time.Duration) bool {
	switch a.Result {
	case event.AttemptOK:
		return true
	case event.AttemptRefused, event.AttemptBusy, event.AttemptClient:
		return false
	}
	return time.Duration(a.LatencyMs)*time.Millisecond >= fast
}

// customerPrice is the configured price per unit for a class.
func (x *exchange) customerPrice() float64 {
	if p, ok := x.ci.cfg.ModelPrices[x.info.model]; ok {
		return p
	}
	return x.ci.cfg.CustomerPricePerUnit
}

// outcome builds the event of the request, ended at end.
func (x *exchange) outcome(end time.Time) event.Outcome {
	units := x.finalUnits()
	o := event.Outcome{
		ID:            x.id,
		Schema:        event.SchemaVersion,
		GatewayID:     x.s.cfg.GatewayID,
		GatewayRegion: x.s.cfg.GatewayRegion,
		ClientRegion:  x.region,
		APIKeyID:      x.key.cfg.ID,
		Customer:      x.key.cfg.Customer,
		Capability:    x.ci.spec.name,
		Model:         x.info.model,
		Units:         units,
		UnitKind:      x.ci.spec.unitKind(),
		StartMs:       x.start.UnixMilli(),
		EndMs:         max(end.UnixMilli(), x.start.UnixMilli()),
		Status:        x.final,
		ErrorClass:    x.errorClass,
		HTTPStatus:    x.httpStatus(),
		LatencyMs:     max(end.Sub(x.start).Milliseconds(), 0),
		BytesIn:       int64(len(x.body)),
		BytesOut:      x.bytesOut,
		Attempts:      x.attempts,
	}
	if x.wrote {
		o.TTFBMs = max(x.ttfb.Milliseconds(), 0)
	}
	if x.s.policy != nil {
		o.PolicyVersion = x.s.policy.Version
	}
	fast := x.s.cfg.FastFailure
	for i := range o.Attempts {
		a := &o.Attempts[i]
		a.Billed = billed(*a, fast)
		if a.Billed {
			a.Cost = x.prices[i] * float64(units)
			o.Cost += a.Cost
		}
	}
	if n := len(x.prices); n > 0 {
		o.PricePerUnit = x.prices[n-1]
	}
	if o.Status == event.StatusOK {
		o.Charge = x.customerPrice() * float64(units)
	}
	o.Margin = o.Charge - o.Cost
	return o
}
