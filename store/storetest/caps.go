package storetest

import (
	"sync/atomic"
	"time"

	"github.com/go402/go402/store"
)

var capsTests = []subtest{
	{"RefusesAtLimit", testCapsRefusesAtLimit},
	{"RefundGivesRoom", testCapsRefundGivesRoom},
	{"ResetsNextPeriod", testCapsResetsNextPeriod},
	{"MonthBounds", testCapsMonthBounds},
	{"ThresholdsOnceConcurrently", testCapsThresholdsOnceConcurrently},
	{"ThresholdsOnceAcrossInstances", testCapsThresholdsOnceAcrossInstances},
	{"ThresholdsAgainNextPeriod", testCapsThresholdsAgainNextPeriod},
	{"SpendWithTokens", testCapsSpendWithTokens},
	{"HoldRefusedAtCap", testCapsHoldRefusedAtCap},
	{"HoldSettleGivesBack", testCapsHoldSettleGivesBack},
	{"HoldLeaseGivesBack", testCapsHoldLeaseGivesBack},
	{"HoldThresholdsOnceConcurrently", testCapsHoldThresholdsOnceConcurrently},
	{"HoldWithTokens", testCapsHoldWithTokens},
}

// seedCapped stores a new account with a balance, a daily cap and
// thresholds, and returns its ID.
func (e *env) seedCapped(balance, limit int64, ts ...store.Threshold) string {
	e.Helper()
	capability[store.SpendCapper](e)
	a := store.Account{ID: e.newID(), Plan: "test", Balance: balance,
		SpendCap: &store.SpendCap{Limit: limit, Period: store.PeriodDay}, Thresholds: ts}
	e.seed(a)
	return a.ID
}

// capWant is what a spend or a hold under a spend cap should answer:
// whether it is allowed, the balance after it, and the cap's Spent and
// Reached.
type capWant struct {
	ok             bool
	balance, spent int64
	reached        bool
}

// wantCapSpend calls Spend and checks OK, Balance and the cap's figures.
func (e *env) wantCapSpend(id string, cost int64, w capWant) store.SpendResult {
	ok, balance, spent, reached := w.ok, w.balance, w.spent, w.reached
	e.Helper()
	r := e.spend(id, cost)
	if r.OK != ok || r.Balance != balance || r.Cap == nil || r.Cap.Spent != spent || r.Cap.Reached != reached {
		e.Errorf("Spend(%d) = %+v cap %+v, want OK:%v Balance:%d Spent:%d Reached:%v",
			cost, r, r.Cap, ok, balance, spent, reached)
	}
	return r
}

// testCapsRefusesAtLimit checks that spends reach the cap exactly and the
// one beyond it is refused, debiting nothing, with the period's end.
func testCapsRefusesAtLimit(e *env) {
	id := e.seedCapped(1000, 100)
	e.wantCapSpend(id, 60, capWant{true, 940, 60, false})
	e.wantCapSpend(id, 41, capWant{false, 940, 60, true})
	r := e.wantCapSpend(id, 40, capWant{true, 900, 100, false})
	_, end := store.PeriodDay.Bounds(e.now(), time.Time{})
	if r.Cap != nil && (!r.Cap.ResetAt.Equal(end) || r.Cap.Limit != 100) {
		e.Errorf("cap = %+v, want Limit 100 ResetAt %v", r.Cap, end)
	}
	e.wantCapSpend(id, 1, capWant{false, 900, 100, true})
	e.wantBalance(id, 900)
}

// testCapsRefundGivesRoom checks that a refund gives its amount back to
// the current period.
func testCapsRefundGivesRoom(e *env) {
	r := capability[store.Refunder](e)
	id := e.seedCapped(1000, 100)
	e.wantCapSpend(id, 100, capWant{true, 900, 100, false})
	e.wantCapSpend(id, 30, capWant{false, 900, 100, true})
	if b := e.refund(r, id, 30); b != 930 {
		e.Errorf("Refund(30) = %d, want 930", b)
	}
	e.wantCapSpend(id, 30, capWant{true, 900, 100, false})
}

// testCapsResetsNextPeriod checks that the next period starts from zero.
func testCapsResetsNextPeriod(e *env) {
	e.needAdvance()
	id := e.seedCapped(1000, 100)
	e.wantCapSpend(id, 100, capWant{true, 900, 100, false})
	_, end := store.PeriodDay.Bounds(e.now(), time.Time{})
	e.h.Advance(end.Sub(e.h.Now()) + time.Second)
	e.wantCapSpend(id, 100, capWant{true, 800, 100, false})
	e.wantCapSpend(id, 1, capWant{false, 800, 100, true})
}

// testCapsMonthBounds checks that monthly cap periods, of calendar
// months or anchored to the billing cycle (Refill.Anchor), end where
// [store.Period.Bounds] says, across short months and leap years.
func testCapsMonthBounds(e *env) {
	e.needAdvance()
	capability[store.SpendCapper](e)
	anchors := []time.Time{
		{}, // calendar months
		time.Date(2024, 1, 31, 10, 30, 0, 0, time.UTC),
		time.Date(2023, 11, 30, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC),
	}
	steps := []time.Duration{0, 40 * 24 * time.Hour, 20 * 24 * time.Hour, 9 * time.Hour, 400 * 24 * time.Hour, 31 * 24 * time.Hour}
	for _, anchor := range anchors {
		a := store.Account{ID: e.newID(), Plan: "test", Balance: 1 << 40,
			SpendCap: &store.SpendCap{Limit: 1 << 30, Period: store.PeriodMonth}}
		if !anchor.IsZero() {
			a.Refill = &store.Refill{Amount: 1, Every: 1000 * time.Hour, Anchor: anchor}
		}
		e.seed(a)
		for _, d := range steps {
			e.h.Advance(d)
			r := e.spend(a.ID, 1)
			_, end := store.PeriodMonth.Bounds(e.now(), anchor)
			if r.Cap == nil || !r.Cap.ResetAt.Equal(end) {
				e.Errorf("anchor %v at %v: cap %+v, want ResetAt %v", anchor, e.now(), r.Cap, end)
			}
		}
	}
}

// thresholds are one of each kind: half the cap of 80, a balance of 50.
var thresholds = []store.Threshold{
	{Kind: store.ThresholdCapPercent, Value: 50},
	{Kind: store.ThresholdBalance, Value: 50},
}

// crossings counts the thresholds that spends reported, by kind.
type crossings struct{ cap, balance atomic.Int64 }

// count adds the thresholds r crossed.
func (c *crossings) count(r store.SpendResult) {
	for _, t := range r.Crossed() {
		if t.Kind == store.ThresholdCapPercent {
			c.cap.Add(1)
		} else {
			c.balance.Add(1)
		}
	}
}

// wantOnceEach checks that each of thresholds was reported exactly once.
func (c *crossings) wantOnceEach(e *env) {
	e.Helper()
	if c.cap.Load() != 1 || c.balance.Load() != 1 {
		e.Errorf("thresholds reported %d (cap) and %d (balance) times, want once each",
			c.cap.Load(), c.balance.Load())
	}
}

// spendCounting spends 1 from id 64 times in 8 goroutines, each using the
// stores in turn, checks the balance after and that each of thresholds was
// reported exactly once.
func (e *env) spendCounting(id string, stores ...store.Store) {
	e.Helper()
	var crossed crossings
	e.concurrently("concurrent Spend", 8, func(i int) error {
		for j := range 8 {
			r, err := stores[(i+j)%len(stores)].Spend(e.ctx, id, 1)
			if err != nil {
				return err
			}
			crossed.count(r)
		}
		return nil
	})
	crossed.wantOnceEach(e)
	e.wantBalance(id, 36)
}

// testCapsThresholdsOnceConcurrently checks that 8 goroutines spending
// across both thresholds report each exactly once.
func testCapsThresholdsOnceConcurrently(e *env) {
	id := e.seedCapped(100, 80, thresholds...)
	e.spendCounting(id, e.h.Store)
}

// testCapsThresholdsOnceAcrossInstances is testCapsThresholdsOnceConcurrently
// through two instances of the store.
func testCapsThresholdsOnceAcrossInstances(e *env) {
	if e.h.Other == nil {
		e.Skip("storetest: Harness.Other is nil")
	}
	id := e.seedCapped(100, 80, thresholds...)
	e.spendCounting(id, e.h.Store, e.h.Other)
}

// testCapsThresholdsAgainNextPeriod checks that a threshold is reported
// again in the next period, and not twice in one, also when a refund took
// the spending back below it.
func testCapsThresholdsAgainNextPeriod(e *env) {
	e.needAdvance()
	r := capability[store.Refunder](e)
	id := e.seedCapped(1000, 10, store.Threshold{Kind: store.ThresholdCapPercent, Value: 50})
	want := func(cost int64, n int) {
		e.Helper()
		if got := len(e.spend(id, cost).Crossed()); got != n {
			e.Errorf("Spend(%d) crossed %d thresholds, want %d", cost, got, n)
		}
	}
	want(4, 0)
	want(1, 1)
	want(1, 0)
	e.refund(r, id, 3)
	want(2, 0)
	_, end := store.PeriodDay.Bounds(e.now(), time.Time{})
	e.h.Advance(end.Sub(e.h.Now()) + time.Second)
	want(5, 1)
	want(5, 0)
}

// testCapsSpendWithTokens checks that spends with tokens keep the cap and
// report thresholds, and that one the cap refuses takes no token.
func testCapsSpendWithTokens(e *env) {
	_, sp := e.bucketSpender()
	id := e.seedCapped(1000, 10, store.Threshold{Kind: store.ThresholdCapPercent, Value: 50})
	b := store.Bucket{Account: id, Key: e.newBucketKey(), Rate: 1, Burst: 5, Cost: 1}
	step := e.capTokensStep("SpendWithTokens", func(cost int64) (store.SpendResult, store.BucketResult, error) {
		return sp.SpendWithTokens(e.ctx, id, cost, b)
	})
	step(6, true, false, 1, 4)
	step(5, false, true, 0, 4)
	step(4, true, false, 0, 3)
	e.wantBalance(id, 990)
}

// capTokensStep returns a check of one call of debit, a spend or a hold
// with tokens (named name) under a spend cap, of an amount: it must answer
// OK ok and Reached reached, cross crossed thresholds and leave remaining
// tokens.
func (e *env) capTokensStep(name string, debit func(amount int64) (store.SpendResult, store.BucketResult, error)) func(amount int64, ok, reached bool, crossed, remaining int) {
	return func(amount int64, ok, reached bool, crossed, remaining int) {
		e.Helper()
		sr, br, err := debit(amount)
		if err != nil {
			e.Fatalf("%s(%d): %v", name, amount, err)
		}
		if sr.OK != ok || sr.Cap == nil || sr.Cap.Reached != reached || len(sr.Crossed()) != crossed || br.Remaining != remaining {
			e.Errorf("%s(%d) = %+v cap %+v, %+v; want OK %v, Reached %v, %d crossed, Remaining %d",
				name, amount, sr, sr.Cap, br, ok, reached, crossed, remaining)
		}
	}
}
