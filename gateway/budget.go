package gateway

import (
	"net/http"
	"time"

	"github.com/loopgate/loopgate/event"
)

type budgetKey struct {
	period event.BudgetPeriod
	of     event.BudgetOf
}

// spendState is one budget of one scope in the current period. Spend is
// counted in parts: what this router's finished requests spent (own, of
// which ownSeen is already visible in the warehouse), what its admitted
// requests in flight are estimated to spend (reserved), and what the
// other routers (and this router's earlier runs) spent as last read from
// the warehouse (others).
type spendState struct {
	start    time.Time // the period's start; a new period starts from zero
	own      float64
	ownSeen  float64
	reserved float64
	others   float64
	warned   int    // how many of Config.WarnAt this period has crossed
	name     string // "<period>.<of>", the metric's label, set on first use
}

// total is the spend as this router knows it.
func (s *spendState) total() float64 { return s.own + s.reserved + s.others }

// visible is the spend every router can see: the warehouse's.
func (s *spendState) visible() float64 { return s.others + s.ownSeen }

// unseen is this router's spend the other routers cannot see yet: its
// finished requests not yet in the warehouse, and those in flight.
func (s *spendState) unseen() float64 { return max(s.own-s.ownSeen, 0) + s.reserved }

// periodStart is the start of the UTC calendar period holding t.
func periodStart(p event.BudgetPeriod, t time.Time) time.Time {
	t = t.UTC()
	switch p {
	case event.PeriodHour:
		return t.Truncate(time.Hour)
	case event.PeriodDay:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	default:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
}

func periodEnd(p event.BudgetPeriod, start time.Time) time.Time {
	switch p {
	case event.PeriodHour:
		return start.Add(time.Hour)
	case event.PeriodDay:
		return start.AddDate(0, 0, 1)
	default:
		return start.AddDate(0, 1, 0)
	}
}

// budget returns the state of b in the period holding now, starting a new
// period when the old one is over.
func (s *scope) budget(b event.Budget, now time.Time) *spendState {
	if s.spend == nil {
		s.spend = map[budgetKey]*spendState{}
	}
	k := budgetKey{b.Period, budgetOf(b)}
	st := periodStart(b.Period, now)
	sp := s.spend[k]
	if sp == nil || !sp.start.Equal(st) {
		sp = &spendState{start: st}
		s.spend[k] = sp
	}
	return sp
}

// checkBudgets refuses a request whose estimate would take a budget over
// its amount. At the limit means: a request is admitted when spend so far
// plus its estimate is at most the budget (≤, so spend may end exactly at
// the budget), and refused when it would go over by more than the rounding
// of float64 sums (budgetSlack of the budget, a millionth of a cent on
// 10 USD): 402 budget_exceeded.
//
// With n routers a second rule keeps them from overshooting together
// while their spend travels to the warehouse: a router's unseen spend
// (finished but not yet visible, plus in flight) may not exceed its 1/n
// share of what the warehouse shows as remaining. Then the spend of all
// routers is at most visible + n × remaining/n = the budget. A request
// held back by this rule alone is not over budget: it gets 429
// budget_pending with Retry-After of one sync interval, when more of this
// router's spend will be visible. A router with nothing unseen may always
// admit one request that fits the budget as it sees it, so the last of a
// budget is not held back forever: the routers together overshoot by at
// most n − 1 requests' estimates.
func (s *scope) checkBudgets(budgets []event.Budget, now time.Time, est estimate, n int, retry time.Duration) *Refusal {
	for _, b := range budgets {
		sp := s.budget(b, now)
		e := est.of(budgetOf(b))
		limit := "budget." + string(b.Period) + "." + string(budgetOf(b))
		if sp.total()+e > b.USD*(1+budgetSlack) {
			end := periodEnd(b.Period, sp.start)
			r := &Refusal{Status: http.StatusPaymentRequired, Code: CodeBudgetExceeded, Scope: s.kind, ScopeID: s.id,
				Limit: limit, Value: b.USD, Local: b.USD, ResetAt: end, RetryAfter: end.Sub(now)}
			r.describe("budget")
			r.msg += "; spent " + fmtNum(sp.total()) + " USD, this request ~" + fmtNum(e) + " USD"
			return r
		}
		if n > 1 && e > 0 && sp.unseen() > b.USD*budgetSlack {
			share := (b.USD - sp.visible()) / float64(n)
			if sp.unseen()+e > share*(1+budgetSlack)+b.USD*budgetSlack {
				r := &Refusal{Status: http.StatusTooManyRequests, Code: CodeBudgetPending, Scope: s.kind, ScopeID: s.id,
					Limit: limit, Value: b.USD, Local: share, ResetAt: now.Add(retry), RetryAfter: retry}
				r.describe("budget nearly spent")
				r.msg += "; this router's share of the remaining " + fmtNum(b.USD-sp.visible()) + " USD is in flight until the other routers see it"
				return r
			}
		}
	}
	return nil
}

// budgetSlack absorbs float64 rounding at the boundary (0.1+0.2 > 0.3).
const budgetSlack = 1e-9

// estimate is what a request is expected to spend, at admission.
type estimate struct{ charge, cost float64 }

func (e estimate) of(o event.BudgetOf) float64 {
	if o == event.BudgetCost {
		return e.cost
	}
	return e.charge
}
