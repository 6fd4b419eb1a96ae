package storetest

import (
	"sync/atomic"
	"time"

	"github.com/go402/go402/store"
)

// acquire calls AcquireSlot, failing the test on error.
func (e *env) acquire(sl store.Slots, key string, max int, lease time.Duration) (string, bool) {
	e.Helper()
	slot, ok, err := sl.AcquireSlot(e.ctx, key, max, lease)
	if err != nil {
		e.Fatalf("AcquireSlot(%q, %d, %v): %v", key, max, lease, err)
	}
	return slot, ok
}

// testSlots checks that a key holds at most max slots, that releasing one
// frees it (twice does nothing), that keys are apart, and that a bad max
// or lease is an error wrapping ErrInvalidAmount.
func testSlots(e *env) {
	sl := capability[store.Slots](e)
	key, other := e.newBucketKey(), e.newBucketKey()
	a, okA := e.acquire(sl, key, 2, time.Hour)
	_, okB := e.acquire(sl, key, 2, time.Hour)
	if _, ok := e.acquire(sl, key, 2, time.Hour); !okA || !okB || ok {
		e.Fatalf("three acquires of 2 slots: %v %v %v, want true true false", okA, okB, ok)
	}
	if _, ok := e.acquire(sl, other, 1, time.Hour); !ok {
		e.Errorf("another key's slot refused")
	}
	for range 2 {
		if err := sl.ReleaseSlot(e.ctx, key, a); err != nil {
			e.Fatalf("ReleaseSlot: %v", err)
		}
	}
	if _, ok := e.acquire(sl, key, 2, time.Hour); !ok {
		e.Errorf("acquire after a release refused")
	}
	if _, ok := e.acquire(sl, key, 2, time.Hour); ok {
		e.Errorf("a release twice freed two slots")
	}
	for _, c := range []struct {
		max   int
		lease time.Duration
	}{{0, time.Second}, {-1, time.Second}, {1, 0}, {1, -time.Second}} {
		_, _, err := sl.AcquireSlot(e.ctx, key, c.max, c.lease)
		e.wantErr("AcquireSlot(bad max or lease)", err, store.ErrInvalidAmount)
	}
}

// testSlotsLease checks that a slot never released (its process died) is
// free once its lease ends, by the store's clock, and not before.
func testSlotsLease(e *env) {
	sl := capability[store.Slots](e)
	e.needAdvance()
	key := e.newBucketKey()
	e.acquire(sl, key, 1, 10*time.Second)
	e.h.Advance(9 * time.Second)
	if _, ok := e.acquire(sl, key, 1, 10*time.Second); ok {
		e.Fatalf("a slot was free before its lease ended")
	}
	e.h.Advance(2 * time.Second)
	if _, ok := e.acquire(sl, key, 1, 10*time.Second); !ok {
		e.Errorf("a slot was still held after its lease ended")
	}
}

// testSlotsExactUnderConcurrency checks that 200 concurrent acquires of
// 7 slots get exactly 7, and that releasing them all lets 7 more in.
func testSlotsExactUnderConcurrency(e *env) {
	sl := capability[store.Slots](e)
	key := e.newBucketKey()
	for round := range 2 {
		var got atomic.Int64
		slots := make([]string, 200)
		e.concurrently("concurrent AcquireSlot", 200, func(i int) error {
			slot, ok, err := sl.AcquireSlot(e.ctx, key, 7, time.Hour)
			if ok {
				got.Add(1)
				slots[i] = slot
			}
			return err
		})
		if n := got.Load(); n != 7 {
			e.Fatalf("round %d: %d of 200 acquires of 7 slots succeeded, want 7", round, n)
		}
		for _, s := range slots {
			if s != "" {
				if err := sl.ReleaseSlot(e.ctx, key, s); err != nil {
					e.Fatalf("ReleaseSlot: %v", err)
				}
			}
		}
	}
}
