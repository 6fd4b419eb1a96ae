package store

import (
	"fmt"
	"slices"
	"time"
)

// SpendCap limits the credits an account may spend per period,
// independently of its balance: a spend that would take the credits spent
// in the current period above Limit is refused and debits nothing, and a
// refund gives room back in the current period. A month is anchored to the
// account's billing cycle ([Refill].Anchor) when it has one. Spends and
// refunds count, and spends with tokens ([BucketSpender]). So do credits
// held ([Holder], [BucketHolder]): a hold counts as a spend of its amount
// (refused at the cap, crossing thresholds), and the part a settlement
// releases, or all of a hold its lease releases, is given back to the
// current period as a refund is.
type SpendCap struct {
	Limit  int64  `json:"limit"`  // credits per period; positive
	Period Period `json:"period"` // PeriodDay or PeriodMonth, or any other [Period]
	// Spent is what was spent in the period starting at Start, both kept
	// by stores.
	Spent int64     `json:"spent,omitempty"`
	Start time.Time `json:"start,omitzero"`
}

// problem describes the first problem of c, if set, or is "".
func (c *SpendCap) problem() string {
	switch {
	case c == nil:
		return ""
	case c.Spent < 0:
		return fmt.Sprintf("negative spend cap spending %d", c.Spent)
	case c.Limit <= 0:
		return fmt.Sprintf("spend cap limit must be > 0, got %d", c.Limit)
	case !c.Period.Valid():
		return fmt.Sprintf("spend cap: unknown period %q", c.Period)
	}
	return ""
}

// ThresholdKind is what a [Threshold] measures.
type ThresholdKind string

// Threshold kinds. A cap percentage is crossed when the credits spent in
// the cap's period reach Value percent of the [SpendCap] limit; a quota
// percentage when the credits used of the [Refill] amount since the last
// refill reach Value percent of it; a balance level when the balance
// falls to Value or below.
const (
	ThresholdCapPercent   ThresholdKind = "cap_percent"
	ThresholdQuotaPercent ThresholdKind = "quota_percent"
	ThresholdBalance      ThresholdKind = "balance"
)

// Threshold is a level whose crossing by a spend is reported once per
// period: the period of the spend cap for cap percentages, of the refill
// for quota percentages, and for balance levels that of the refill, else
// of the cap, else the UTC calendar month.
type Threshold struct {
	Kind  ThresholdKind `json:"kind"`
	Value int64         `json:"value"` // a percentage, 1 to 100, or a balance level, ≥ 0
	// Marked is the start of the period in which the threshold was last
	// reported, kept by stores; zero if never.
	Marked time.Time `json:"marked,omitzero"`
}

// problem describes the first problem of t, or is "".
func (t *Threshold) problem(a *Account) string {
	switch t.Kind {
	case ThresholdCapPercent, ThresholdQuotaPercent:
		if t.Value < 1 || t.Value > 100 {
			return fmt.Sprintf("threshold %s must be 1 to 100, got %d", t.Kind, t.Value)
		}
	case ThresholdBalance:
		if t.Value < 0 {
			return fmt.Sprintf("threshold balance must be >= 0, got %d", t.Value)
		}
	default:
		return fmt.Sprintf("unknown threshold kind %q", t.Kind)
	}
	switch {
	case t.Kind == ThresholdCapPercent && a.SpendCap == nil:
		return "a cap_percent threshold needs a spend cap"
	case t.Kind == ThresholdQuotaPercent && a.Refill == nil:
		return "a quota_percent threshold needs a refill"
	}
	return ""
}

// CapResult is the spend cap and threshold part of a [SpendResult], set
// for accounts with a [SpendCap] or [Threshold]s.
type CapResult struct {
	Limit   int64     // the cap's limit; zero without a cap
	Spent   int64     // credits spent in the cap's period, after the spend
	ResetAt time.Time // the end of the cap's period; zero without a cap
	Reached bool      // the spend was refused because it would cross the cap
	// Crossed are the thresholds the spend crossed, with their new marks:
	// each is reported by one spend only per period.
	Crossed []Threshold
}

// capped reports whether spends of a go through the cap logic.
func (a *Account) capped() bool { return a.SpendCap != nil || len(a.Thresholds) > 0 }

// anchor is the billing anchor of monthly periods: the refill's, if any.
func (a *Account) anchor() time.Time {
	if a.Refill != nil {
		return a.Refill.Anchor
	}
	return time.Time{}
}

// rollCap starts a new cap period if now is past the current one, and
// returns the period's end.
func (a *Account) rollCap(now time.Time) time.Time {
	c := *a.SpendCap // a's own copy: the one read may be shared
	a.SpendCap = &c
	start, end := c.Period.Bounds(now, a.anchor())
	if !c.Start.Equal(start) {
		c.Start, c.Spent = start, 0
	}
	return end
}

// spendCapped debits cost from a, which has any due refill applied, at
// now, if both its balance and its spend cap allow, marks the thresholds
// the spend crosses, and returns the outcome. The memory store calls it
// atomically with reading and writing a back, and Preview on a copy.
func (a *Account) spendCapped(now time.Time, cost int64) SpendResult {
	cr := &CapResult{}
	if a.SpendCap != nil {
		cr.ResetAt, cr.Limit = a.rollCap(now), a.SpendCap.Limit
	}
	r := SpendResult{Balance: a.Balance, Cap: cr}
	switch {
	case cost > a.Balance:
	case a.SpendCap != nil && cost > cr.Limit-a.SpendCap.Spent:
		cr.Reached = true
	default:
		before, spentBefore := a.Balance, a.capSpent()
		a.Balance -= cost
		if a.SpendCap != nil {
			a.SpendCap.Spent += cost
		}
		r.OK, r.Balance = true, a.Balance
		cr.Crossed = a.markCrossed(now, before, spentBefore)
	}
	cr.Spent = a.capSpent()
	return r
}

// capSpent is what a spent in the current cap period, or zero without a cap.
func (a *Account) capSpent() int64 {
	if a.SpendCap == nil {
		return 0
	}
	return a.SpendCap.Spent
}

// refundCapped adds amount to a's balance and gives it back to the
// current cap period, up to what was spent in it.
func (a *Account) refundCapped(now time.Time, amount int64) {
	a.Balance += amount
	if a.SpendCap != nil {
		a.rollCap(now)
		a.SpendCap.Spent -= min(amount, a.SpendCap.Spent)
	}
}

// markCrossed marks and returns the thresholds a spend from balance
// before and cap spending spentBefore to a's current ones crossed. It
// copies a.Thresholds before the first mark (the slice read may be
// shared), so a spend that crosses none copies nothing.
func (a *Account) markCrossed(now time.Time, before, spentBefore int64) []Threshold {
	var out []Threshold
	for i, t := range a.Thresholds {
		if !t.crossed(a, before, spentBefore) {
			continue
		}
		p := a.thresholdPeriod(t.Kind, now)
		if t.Marked.Equal(p) {
			continue
		}
		if out == nil {
			a.Thresholds = slices.Clone(a.Thresholds)
		}
		t.Marked = p
		a.Thresholds[i] = t
		out = append(out, t)
	}
	return out
}

// crossed reports whether a spend took a from balance before and cap
// spending spentBefore across t.
func (t *Threshold) crossed(a *Account, before, spentBefore int64) bool {
	switch t.Kind {
	case ThresholdCapPercent:
		level := percentOf(a.SpendCap.Limit, t.Value)
		return spentBefore < level && level <= a.SpendCap.Spent
	case ThresholdQuotaPercent:
		q := a.Refill.Amount
		level := percentOf(q, t.Value)
		return q-before < level && level <= q-a.Balance
	default:
		return before > t.Value && a.Balance <= t.Value
	}
}

// percentOf returns p percent of n, 0 ≤ p ≤ 100, rounded up, exactly.
func percentOf(n, p int64) int64 {
	return n/100*p + (n%100*p+99)/100
}

// thresholdPeriod returns the start of the period in which a threshold of
// kind k is reported once.
func (a *Account) thresholdPeriod(k ThresholdKind, now time.Time) time.Time {
	switch {
	case k == ThresholdCapPercent || (k == ThresholdBalance && a.Refill == nil && a.SpendCap != nil):
		return a.SpendCap.Start
	case a.Refill != nil:
		if b, ok := a.Refill.boundary(now); ok {
			return b
		}
		return a.Refill.Anchor.Add(-a.Refill.Every)
	}
	start, _ := PeriodMonth.Bounds(now, time.Time{})
	return start
}

// capProblem describes the first problem of a's cap and thresholds, or is "".
func (a *Account) capProblem() string {
	if p := a.SpendCap.problem(); p != "" {
		return p
	}
	if len(a.Thresholds) > maxThresholds {
		return fmt.Sprintf("more than %d thresholds", maxThresholds)
	}
	for i := range a.Thresholds {
		if p := a.Thresholds[i].problem(a); p != "" {
			return p
		}
	}
	return ""
}

// maxThresholds is the most thresholds an account may have.
const maxThresholds = 32

// SpendCapper is implemented by stores whose Spend and Refund keep
// [Account.SpendCap] and [Account.Thresholds]; a store without it ignores
// them.
type SpendCapper interface {
	// KeepsSpendCaps is a marker: it does nothing.
	KeepsSpendCaps()
}
