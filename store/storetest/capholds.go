package storetest

import (
	"time"

	"github.com/go402/go402/store"
)

// wantCapHold calls Hold and checks OK, Balance and the cap's figures, and
// that a refused hold is zero.
func (e *env) wantCapHold(h store.Holder, id string, amount int64, w capWant) store.Hold {
	ok, balance, spent, reached := w.ok, w.balance, w.spent, w.reached
	e.Helper()
	hd, r := e.hold(h, id, amount, time.Minute)
	if r.OK != ok || r.Balance != balance || r.Cap == nil || r.Cap.Spent != spent || r.Cap.Reached != reached ||
		(hd == store.Hold{}) == ok {
		e.Errorf("Hold(%d) = %+v, %+v cap %+v; want OK:%v Balance:%d Spent:%d Reached:%v",
			amount, hd, r, r.Cap, ok, balance, spent, reached)
	}
	return hd
}

// testCapsHoldRefusedAtCap checks that a hold counts as a spend of its
// amount: the one that would cross the cap is refused and holds nothing.
func testCapsHoldRefusedAtCap(e *env) {
	h := capability[store.Holder](e)
	id := e.seedCapped(1000, 100)
	e.wantCapHold(h, id, 60, capWant{true, 940, 60, false})
	e.wantCapHold(h, id, 41, capWant{false, 940, 60, true})
	e.wantCapSpend(id, 41, capWant{false, 940, 60, true})
	e.wantCapHold(h, id, 40, capWant{true, 900, 100, false})
	e.wantCapHold(h, id, 0, capWant{true, 900, 100, false})
	e.wantCapHold(h, id, 1, capWant{false, 900, 100, true})
	e.wantBalance(id, 900)
}

// testCapsHoldSettleGivesBack checks that a settlement gives the part it
// releases back to the cap's period, and the actual cost stays counted.
func testCapsHoldSettleGivesBack(e *env) {
	h := capability[store.Holder](e)
	id := e.seedCapped(1000, 100)
	hd := e.wantCapHold(h, id, 100, capWant{true, 900, 100, false})
	e.wantCapSpend(id, 1, capWant{false, 900, 100, true})
	if bal, err := h.Settle(e.ctx, hd, 30); err != nil || bal != 970 {
		e.Fatalf("Settle(30) of 100 = %d, %v; want 970", bal, err)
	}
	e.wantCapSpend(id, 71, capWant{false, 970, 30, true})
	e.wantCapSpend(id, 70, capWant{true, 900, 100, false})
	e.wantCapSpend(id, 1, capWant{false, 900, 100, true})
}

// testCapsHoldLeaseGivesBack checks that a hold its lease releases gives
// all of it back to the cap's period.
func testCapsHoldLeaseGivesBack(e *env) {
	e.needAdvance()
	h := capability[store.Holder](e)
	id := e.seedCapped(1000, 100)
	e.wantCapHold(h, id, 100, capWant{true, 900, 100, false})
	e.h.Advance(61 * time.Second)
	e.wantBalance(id, 1000)
	e.wantCapSpend(id, 100, capWant{true, 900, 100, false})
	e.wantCapSpend(id, 1, capWant{false, 900, 100, true})
}

// testCapsHoldThresholdsOnceConcurrently checks that 8 goroutines holding
// and settling across both thresholds report each exactly once.
func testCapsHoldThresholdsOnceConcurrently(e *env) {
	h := capability[store.Holder](e)
	id := e.seedCapped(100, 80, thresholds...)
	var crossed crossings
	e.concurrently("concurrent Hold", 8, func(int) error {
		for range 8 {
			hd, r, err := h.Hold(e.ctx, id, 2, time.Minute)
			if err != nil {
				return err
			}
			crossed.count(r)
			if _, err := h.Settle(e.ctx, hd, 1); err != nil {
				return err
			}
		}
		return nil
	})
	crossed.wantOnceEach(e)
	e.wantBalance(id, 36)
	e.wantCapSpend(id, 17, capWant{false, 36, 64, true})
}

// testCapsHoldWithTokens checks that holds with tokens keep the cap and
// report thresholds, and that one the cap refuses takes no token.
func testCapsHoldWithTokens(e *env) {
	_, h, bh := e.bucketHolder()
	id := e.seedCapped(1000, 10, store.Threshold{Kind: store.ThresholdCapPercent, Value: 50})
	b := store.Bucket{Account: id, Key: e.newBucketKey(), Rate: tinyRate, Burst: 5, Cost: 1}
	var last store.Hold
	step := e.capTokensStep("HoldWithTokens", func(amount int64) (store.SpendResult, store.BucketResult, error) {
		hd, sr, br, err := bh.HoldWithTokens(e.ctx, id, amount, time.Minute, b)
		if sr.OK {
			last = hd
		}
		return sr, br, err
	})
	step(6, true, false, 1, 4)
	step(5, false, true, 0, 4)
	if _, err := h.Settle(e.ctx, last, 2); err != nil {
		e.Fatal(err)
	}
	step(8, true, false, 0, 3)
	step(1, false, true, 0, 3)
	e.wantBalance(id, 990)
}
