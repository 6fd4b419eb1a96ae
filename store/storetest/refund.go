package storetest

import (
	"math"
	"time"

	"github.com/go402/go402/store"
)

var refundTests = []subtest{
	{"GivesBack", testRefundGivesBack},
	{"InvalidAmount", testRefundInvalidAmount},
	{"UnknownAccount", testRefundUnknownAccount},
	{"ExactUnderConcurrency", testRefundExactUnderConcurrency},
}

// refund calls Refund, failing the test on error.
func (e *env) refund(r store.Refunder, id string, amount int64) int64 {
	e.Helper()
	b, err := r.Refund(e.ctx, id, amount)
	if err != nil {
		e.Fatalf("Refund(%q, %d): %v", id, amount, err)
	}
	return b
}

// testRefundGivesBack checks that a refund restores what a spend took.
func testRefundGivesBack(e *env) {
	r := capability[store.Refunder](e)
	id := e.seedBalance(100, nil, time.Time{})
	e.wantSpend(id, 30, store.SpendResult{OK: true, Balance: 70})
	if b := e.refund(r, id, 30); b != 100 {
		e.Errorf("Refund(30) = %d, want 100", b)
	}
	e.wantBalance(id, 100)
}

// testRefundInvalidAmount checks that a refund of zero or less is an error
// wrapping ErrInvalidAmount and changes nothing.
func testRefundInvalidAmount(e *env) {
	r := capability[store.Refunder](e)
	id := e.seedBalance(100, nil, time.Time{})
	for _, amount := range []int64{0, -1, math.MinInt64} {
		_, err := r.Refund(e.ctx, id, amount)
		e.wantErr("Refund(non-positive amount)", err, store.ErrInvalidAmount)
	}
	e.wantBalance(id, 100)
}

// testRefundUnknownAccount checks that refunding an account never stored
// is an error wrapping ErrNotFound.
func testRefundUnknownAccount(e *env) {
	r := capability[store.Refunder](e)
	e.seedBalance(100, nil, time.Time{})
	_, err := r.Refund(e.ctx, e.newID(), 1)
	e.wantErr("Refund(unknown account)", err, store.ErrNotFound)
}

// testRefundExactUnderConcurrency checks that concurrent refunds and
// spends lose no update.
func testRefundExactUnderConcurrency(e *env) {
	const workers = 200
	r := capability[store.Refunder](e)
	id := e.seedBalance(workers, nil, time.Time{})
	e.concurrently("concurrent Refund/Spend", 2*workers, func(i int) error {
		if i%2 == 0 {
			_, err := r.Refund(e.ctx, id, 3)
			return err
		}
		res, err := e.h.Store.Spend(e.ctx, id, 1)
		if err == nil && !res.OK {
			e.Errorf("Spend(1) refused with balance %d; refunds only add", res.Balance)
		}
		return err
	})
	e.wantBalance(id, workers+2*workers)
}
