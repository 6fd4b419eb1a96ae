package storetest

import (
	"time"

	"github.com/go402/go402/store"
)

var refillTests = []subtest{
	{"BeforeFirstBoundary", testRefillBeforeFirstBoundary},
	{"FirstBoundary", testRefillFirstBoundary},
	{"AlreadyApplied", testRefillAlreadyApplied},
	{"HigherBalanceKept", testRefillHigherBalanceKept},
	{"SkippedBoundariesApplyOnce", testRefillSkippedBoundariesApplyOnce},
	{"AtBoundary", testRefillAtBoundary},
}

const (
	refillAmount = 100
	day          = 24 * time.Hour
)

// testRefillBeforeFirstBoundary checks that nothing is refilled before the
// anchor, and that a refusal reports the anchor as the next refill.
func testRefillBeforeFirstBoundary(e *env) {
	anchor := e.now().Add(time.Hour)
	id := e.seedBalance(0, &store.Refill{Amount: refillAmount, Every: day, Anchor: anchor}, time.Time{})
	e.wantSpend(id, 1, store.SpendResult{OK: false, Balance: 0, NextRefill: anchor})
}

// testRefillFirstBoundary checks that a boundary passed since the last
// refill (here: none yet) tops the balance up to Amount, once.
func testRefillFirstBoundary(e *env) {
	anchor := e.now().Add(-time.Hour)
	id := e.seedBalance(0, &store.Refill{Amount: refillAmount, Every: day, Anchor: anchor}, time.Time{})
	next := anchor.Add(day)
	e.wantSpend(id, 10, store.SpendResult{OK: true, Balance: 90, NextRefill: next})
	e.wantSpend(id, 10, store.SpendResult{OK: true, Balance: 80, NextRefill: next})
}

// testRefillAlreadyApplied checks that a boundary already recorded in
// RefilledAt is not applied again, and that a refusal reports the next
// boundary.
func testRefillAlreadyApplied(e *env) {
	anchor := e.now().Add(-time.Hour)
	id := e.seedBalance(3, &store.Refill{Amount: refillAmount, Every: day, Anchor: anchor}, anchor)
	e.wantSpend(id, 10, store.SpendResult{OK: false, Balance: 3, NextRefill: anchor.Add(day)})
	e.wantBalance(id, 3)
}

// testRefillHigherBalanceKept checks that a due refill never lowers a
// balance above Amount.
func testRefillHigherBalanceKept(e *env) {
	anchor := e.now().Add(-time.Hour)
	id := e.seedBalance(500, &store.Refill{Amount: refillAmount, Every: day, Anchor: anchor}, anchor.Add(-day))
	e.wantSpend(id, 1, store.SpendResult{OK: true, Balance: 499, NextRefill: anchor.Add(day)})
}

// testRefillSkippedBoundariesApplyOnce checks that several boundaries
// passed since the last refill top the balance up once, not once each, and
// that the latest of them is recorded.
func testRefillSkippedBoundariesApplyOnce(e *env) {
	anchor := e.now().Add(-2*day - time.Hour)
	id := e.seedBalance(40, &store.Refill{Amount: refillAmount, Every: day, Anchor: anchor}, anchor)
	next := anchor.Add(3 * day)
	e.wantSpend(id, 0, store.SpendResult{OK: true, Balance: refillAmount, NextRefill: next})
	e.wantSpend(id, refillAmount, store.SpendResult{OK: true, Balance: 0, NextRefill: next})
	// Had only the first skipped boundary been recorded, the second
	// would refill now.
	e.wantSpend(id, 0, store.SpendResult{OK: true, Balance: 0, NextRefill: next})
}

// testRefillAtBoundary checks, with a controlled clock, that a refill
// happens exactly at a boundary and not a moment before.
func testRefillAtBoundary(e *env) {
	e.needAdvance()
	const every = time.Hour
	now := e.h.Now()
	anchor := now.Truncate(time.Second).Add(every)
	id := e.seedBalance(0, &store.Refill{Amount: refillAmount, Every: every, Anchor: anchor}, time.Time{})

	steps := []struct {
		advance time.Duration
		cost    int64
		want    store.SpendResult
	}{
		{anchor.Sub(now) - time.Millisecond, 1, store.SpendResult{OK: false, Balance: 0, NextRefill: anchor}},
		{time.Millisecond, 1, store.SpendResult{OK: true, Balance: 99, NextRefill: anchor.Add(every)}},
		{every - time.Millisecond, 0, store.SpendResult{OK: true, Balance: 99, NextRefill: anchor.Add(every)}},
		{time.Millisecond, 0, store.SpendResult{OK: true, Balance: 100, NextRefill: anchor.Add(2 * every)}},
		{0, 30, store.SpendResult{OK: true, Balance: 70, NextRefill: anchor.Add(2 * every)}},
		{2*every + every/2, 0, store.SpendResult{OK: true, Balance: 100, NextRefill: anchor.Add(4 * every)}},
	}
	for i, s := range steps {
		e.h.Advance(s.advance)
		e.Logf("step %d: now = anchor %+v", i, e.h.Now().Sub(anchor))
		e.wantSpend(id, s.cost, s.want)
	}
}
