package storetest

import (
	"sync/atomic"
	"time"

	"github.com/go402/go402/store"
)

var holdTests = []subtest{
	{"SettleDebitsActual", testHoldSettleDebitsActual},
	{"Refused", testHoldRefused},
	{"SettleOnce", testHoldSettleOnce},
	{"InvalidAmounts", testHoldInvalidAmounts},
	{"LeaseReleases", testHoldLeaseReleases},
	{"ExactUnderConcurrency", testHoldExactUnderConcurrency},
}

// hold calls Hold, failing the test on error.
func (e *env) hold(h store.Holder, id string, amount int64, lease time.Duration) (store.Hold, store.SpendResult) {
	e.Helper()
	hd, res, err := h.Hold(e.ctx, id, amount, lease)
	if err != nil {
		e.Fatalf("Hold(%q, %d): %v", id, amount, err)
	}
	return hd, res
}

// testHoldSettleDebitsActual checks that a hold debits the held amount at
// once and its settlement gives back all but the actual cost.
func testHoldSettleDebitsActual(e *env) {
	h := capability[store.Holder](e)
	id := e.seedBalance(100, nil, time.Time{})
	hd, res := e.hold(h, id, 40, time.Minute)
	if !res.OK || res.Balance != 60 || hd.Amount != 40 || hd.AccountID != id {
		e.Fatalf("Hold(40) = %+v, %+v; want OK, balance 60, a hold of 40", hd, res)
	}
	e.wantBalance(id, 60)
	bal, err := h.Settle(e.ctx, hd, 15)
	if err != nil || bal != 85 {
		e.Fatalf("Settle(15) = %d, %v; want 85", bal, err)
	}
	e.wantBalance(id, 85)
}

// testHoldRefused checks that a hold the balance does not cover changes
// nothing.
func testHoldRefused(e *env) {
	h := capability[store.Holder](e)
	id := e.seedBalance(10, nil, time.Time{})
	hd, res := e.hold(h, id, 11, time.Minute)
	if res.OK || res.Balance != 10 || hd != (store.Hold{}) {
		e.Fatalf("Hold(11) of 10 = %+v, %+v; want refused, balance 10, zero Hold", hd, res)
	}
	e.wantBalance(id, 10)
}

// testHoldSettleOnce checks that a hold settles once: a second settlement
// is an error wrapping ErrNotFound and moves nothing.
func testHoldSettleOnce(e *env) {
	h := capability[store.Holder](e)
	id := e.seedBalance(100, nil, time.Time{})
	hd, _ := e.hold(h, id, 50, time.Minute)
	if _, err := h.Settle(e.ctx, hd, 50); err != nil {
		e.Fatal(err)
	}
	_, err := h.Settle(e.ctx, hd, 0)
	e.wantErr("second Settle", err, store.ErrNotFound)
	e.wantBalance(id, 50)
}

// testHoldInvalidAmounts checks the errors for amounts out of range.
func testHoldInvalidAmounts(e *env) {
	h := capability[store.Holder](e)
	id := e.seedBalance(100, nil, time.Time{})
	_, _, err := h.Hold(e.ctx, id, -1, time.Minute)
	e.wantErr("Hold(-1)", err, store.ErrInvalidAmount)
	_, _, err = h.Hold(e.ctx, id, 1, 0)
	e.wantErr("Hold with no lease", err, store.ErrInvalidAmount)
	_, _, err = h.Hold(e.ctx, e.newID(), 1, time.Minute)
	e.wantErr("Hold(unknown account)", err, store.ErrNotFound)
	hd, _ := e.hold(h, id, 10, time.Minute)
	for _, actual := range []int64{-1, 11} {
		_, err := h.Settle(e.ctx, hd, actual)
		e.wantErr("Settle out of range", err, store.ErrInvalidAmount)
	}
	e.wantBalance(id, 90)
	if _, err := h.Settle(e.ctx, hd, 10); err != nil {
		e.Fatalf("Settle after refused settlements: %v", err)
	}
	e.wantBalance(id, 90)
}

// testHoldLeaseReleases checks that a hold not settled within its lease
// gives every credit back, and cannot be settled afterwards.
func testHoldLeaseReleases(e *env) {
	e.needAdvance()
	h := capability[store.Holder](e)
	id := e.seedBalance(100, nil, time.Time{})
	hd, _ := e.hold(h, id, 30, time.Minute)
	e.h.Advance(59 * time.Second)
	e.wantBalance(id, 70)
	e.h.Advance(2 * time.Second)
	e.wantBalance(id, 100)
	_, err := h.Settle(e.ctx, hd, 5)
	e.wantErr("Settle after the lease", err, store.ErrNotFound)
	e.wantBalance(id, 100)
}

// testHoldExactUnderConcurrency checks that concurrent holds never take the
// balance below zero and settlements lose no update.
func testHoldExactUnderConcurrency(e *env) {
	const workers = 200
	h := capability[store.Holder](e)
	id := e.seedBalance(1000, nil, time.Time{})
	var settled, held atomic.Int64
	e.concurrently("concurrent Hold/Settle", workers, func(i int) error {
		hd, res, err := h.Hold(e.ctx, id, 10, time.Hour)
		if err != nil || !res.OK {
			return err
		}
		held.Add(1)
		if res.Balance < 0 {
			e.Errorf("balance %d after a hold", res.Balance)
		}
		actual := int64(i % 11)
		if _, err := h.Settle(e.ctx, hd, actual); err != nil {
			return err
		}
		settled.Add(actual)
		return nil
	})
	if held.Load() == 0 {
		e.Fatal("no hold succeeded")
	}
	e.wantBalance(id, 1000-settled.Load())
}
