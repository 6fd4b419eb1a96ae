package storetest

import (
	"errors"
	"math"
	"sync/atomic"
	"time"

	"github.com/go402/go402/store"
)

// bucketHolder returns the store as a Buckets, a Holder and a BucketHolder,
// or skips the subtest.
func (e *env) bucketHolder() (store.Buckets, store.Holder, store.BucketHolder) {
	e.Helper()
	return capability[store.Buckets](e), capability[store.Holder](e), capability[store.BucketHolder](e)
}

// holdStep is one HoldWithTokens of a test and what it must return.
type holdStep struct {
	what         string
	amount       int64
	ok, bucketOK bool
	balance      int64
	remaining    int
}

// wantHoldWithTokens runs st with bucket b and returns the hold if made.
func (e *env) wantHoldWithTokens(bh store.BucketHolder, b store.Bucket, st holdStep) (store.Hold, bool) {
	e.Helper()
	hd, sr, br, err := bh.HoldWithTokens(e.ctx, b.Account, st.amount, time.Minute, b)
	if err != nil {
		e.Fatalf("%s: HoldWithTokens(%d): %v", st.what, st.amount, err)
	}
	madeHold := hd.Amount == st.amount && hd.AccountID == b.Account && hd.ID != 0
	if sr.OK != st.ok || br.OK != st.bucketOK || sr.Balance != st.balance || br.Remaining != st.remaining ||
		madeHold != st.ok {
		e.Errorf("%s: HoldWithTokens(%d) = %+v, %+v, %+v; want %+v", st.what, st.amount, hd, sr, br, st)
	}
	return hd, sr.OK
}

// testHoldWithTokens checks that HoldWithTokens takes tokens and holds
// credits together or neither, whichever refuses, that its hold settles as
// Hold's does, and that TakeTokens draws on the same bucket.
func testHoldWithTokens(e *env) {
	bs, h, bh := e.bucketHolder()
	id := e.seedBalance(10, nil, time.Time{})
	b := store.Bucket{Account: id, Key: e.newBucketKey(), Rate: tinyRate, Burst: 2, Cost: 1}
	var held []store.Hold
	for _, st := range []holdStep{
		{"both admit", 4, true, true, 6, 1},
		{"the balance refuses, no token taken", 7, false, true, 6, 1},
		{"both admit again", 6, true, true, 0, 0},
		{"the bucket refuses, nothing held", 0, false, false, 0, 0},
	} {
		if hd, ok := e.wantHoldWithTokens(bh, b, st); ok {
			held = append(held, hd)
		}
	}
	if len(held) != 2 {
		e.Fatalf("%d holds, want 2", len(held))
	}
	for i, actual := range []int64{3, 5} {
		if _, err := h.Settle(e.ctx, held[i], actual); err != nil {
			e.Fatalf("Settle(%d): %v", actual, err)
		}
	}
	e.wantBalance(id, 2) // 10 − 3 − 5

	alone := b
	alone.Account = ""
	e.wantTake("TakeTokens on a stand-alone bucket with the same Key", bs, alone, true, 1)
	e.wantTake("TakeTokens on the drained account bucket", bs, b, false, 0)

	inf := store.Bucket{Account: id, Key: b.Key, Rate: math.Inf(1), Burst: 1, Cost: 5}
	hd, sr, br, err := bh.HoldWithTokens(e.ctx, id, 2, time.Minute, inf)
	if err != nil || !sr.OK || !br.OK || sr.Balance != 0 || hd.Amount != 2 {
		e.Errorf("HoldWithTokens(2, infinite rate, cost 5 > burst 1) = %+v, %+v, %+v, %v; want both OK, Balance 0",
			hd, sr, br, err)
	}
}

// testHoldWithTokensErrors checks that HoldWithTokens refuses with an
// error, holding nothing and taking no tokens, a bucket that is not the
// account's own, an unknown account, a negative amount or lease and an
// invalid bucket.
func testHoldWithTokensErrors(e *env) {
	bs, _, bh := e.bucketHolder()
	id := e.seedBalance(10, nil, time.Time{})
	other := e.seedBalance(10, nil, time.Time{})
	key := e.newBucketKey()
	mine := store.Bucket{Account: id, Key: key, Rate: tinyRate, Burst: 1, Cost: 1}
	for _, foreign := range []store.Bucket{
		{Key: key, Rate: tinyRate, Burst: 1, Cost: 1},
		{Account: other, Key: key, Rate: tinyRate, Burst: 1, Cost: 1},
		{Account: other, Key: key, Rate: math.Inf(1), Burst: 1, Cost: 1},
	} {
		if _, _, _, err := bh.HoldWithTokens(e.ctx, id, 1, time.Minute, foreign); err == nil {
			e.Errorf("HoldWithTokens(%q, %s): no error for a bucket not the account's own", id, bucketName(foreign))
		}
	}
	_, _, _, err := bh.HoldWithTokens(e.ctx, id, -1, time.Minute, mine)
	e.wantErr("HoldWithTokens(negative amount)", err, store.ErrInvalidAmount)
	_, _, _, err = bh.HoldWithTokens(e.ctx, id, 1, 0, mine)
	e.wantErr("HoldWithTokens(no lease)", err, store.ErrInvalidAmount)
	_, _, _, err = bh.HoldWithTokens(e.ctx, id, 1, time.Minute, store.Bucket{Account: id, Key: key, Rate: 0, Burst: 1, Cost: 1})
	e.wantErr("HoldWithTokens(invalid bucket)", err, store.ErrInvalidAmount)
	unknown := e.newID()
	_, _, _, err = bh.HoldWithTokens(e.ctx, unknown, 1, time.Minute, store.Bucket{Account: unknown, Key: key, Rate: tinyRate, Burst: 1, Cost: 1})
	e.wantErr("HoldWithTokens(unknown account)", err, store.ErrNotFound)
	e.wantBalance(id, 10)
	e.wantTake("TakeTokens after the refused holds", bs, mine, true, 0)
}

// testHoldWithWindows checks that HoldWithTokens with several windows holds
// and takes from every window, or neither.
func testHoldWithWindows(e *env) {
	bs, _, bh := e.bucketHolder()
	e.debitWithWindows(bs, "HoldWithTokens", func(id string, amount int64, b store.Bucket) (store.SpendResult, store.BucketResult, error) {
		_, sr, br, err := bh.HoldWithTokens(e.ctx, id, amount, time.Minute, b)
		return sr, br, err
	})
}

// testHoldWithTokensExactUnderConcurrency checks that 200 concurrent holds
// of 3 credits from a balance of 90, each settled at once, with a token
// bucket of 50 and a fixed window of 40, admit at least 30 and at most 40,
// take one token from each window per admitted hold, and that what they
// settle at is exactly what the balance lost.
func testHoldWithTokensExactUnderConcurrency(e *env) {
	bs, h, bh := e.bucketHolder()
	id := e.seedBalance(90, nil, time.Time{})
	b := store.Bucket{Account: id, Key: e.newBucketKey(), Rate: tinyRate, Burst: 50, Cost: 1,
		More: []store.Bucket{e.hourAround(e.newBucketKey(), 40)}}
	var admitted, settled atomic.Int64
	e.concurrently("concurrent HoldWithTokens of two windows", 200, func(i int) error {
		hd, sr, br, err := bh.HoldWithTokens(e.ctx, id, 3, time.Minute, b)
		switch {
		case err != nil:
			return err
		case sr.OK && !br.OK:
			return errors.New("a hold admitted by a window that refused")
		case !sr.OK:
			return nil
		}
		admitted.Add(1)
		actual := int64(i % 4) // 0 to 3
		if _, err := h.Settle(e.ctx, hd, actual); err != nil {
			return err
		}
		settled.Add(actual)
		return nil
	})
	if n := admitted.Load(); n < 30 || n > 40 {
		e.Errorf("admitted %d of 200 holds of 3 from a balance of 90 and a window of 40, want 30 to 40", n)
	}
	e.wantBalance(id, 90-settled.Load())
	left := b
	left.Cost = 0
	r := e.take(bs, left)
	taken := int(admitted.Load())
	if r.Remaining != 50-taken || r.More[0].Remaining != 40-taken {
		e.Errorf("after %d admitted holds: %d and %d tokens left, want %d and %d",
			taken, r.Remaining, r.More[0].Remaining, 50-taken, 40-taken)
	}
}
