package storetest

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/go402/go402/store"
)

// hourAround returns a fixed window of quota tokens, key key, whose
// period is the hour around the store's now.
func (e *env) hourAround(key string, quota int) store.Bucket {
	now := e.h.Now()
	return store.Bucket{Key: key, Burst: quota, Start: now.Add(-30 * time.Minute), End: now.Add(30 * time.Minute)}
}

// testWindowsAllOrNone checks that a take from several windows takes from
// all or none: a fixed window that refuses leaves the token bucket beside
// it untouched, each window's result says whether it held the tokens, and
// a new period fills a fixed window again. For an account's windows and
// for stand-alone ones.
func testWindowsAllOrNone(e *env) {
	bs := capability[store.Buckets](e)
	for _, account := range []string{"", e.seedBalance(10, nil, time.Time{})} {
		tb := store.Bucket{Account: account, Key: e.newBucketKey(), Rate: tinyRate, Burst: 5, Cost: 1}
		fixed := e.hourAround(e.newBucketKey(), 2)
		both := tb
		both.More = []store.Bucket{fixed}
		for i := range 2 {
			r := e.take(bs, both)
			if !r.OK || r.Remaining != 4-i || len(r.More) != 1 || r.More[0].Remaining != 1-i || !r.More[0].OK {
				e.Fatalf("take %d of both windows: %+v, want OK, Remaining %d and %d", i, r, 4-i, 1-i)
			}
		}
		e.checkWindowRefuses(bs, tb, both)
	}
}

// checkWindowRefuses continues testWindowsAllOrNone once both's fixed
// window is spent and its token bucket tb holds 3.
func (e *env) checkWindowRefuses(bs store.Buckets, tb, both store.Bucket) {
	e.Helper()
	r := e.take(bs, both)
	if r.OK || r.Wait != 0 || r.Remaining != 3 || len(r.More) != 1 || r.More[0].OK || r.More[0].Wait <= 0 {
		e.Errorf("take when the fixed window is spent: %+v, want refused by it alone (Wait > 0), the bucket holding 3", r)
	}
	// The token bucket lost nothing to the refused take: 3 are left.
	alone := tb
	alone.Cost = 3
	e.wantTake("the token bucket alone after a refused take of both", bs, alone, true, 0)
	// The next period fills the fixed window again; the bucket refuses now.
	fixed := both.More[0]
	both.More = []store.Bucket{fixed}
	both.More[0].Start, both.More[0].End = fixed.End, fixed.End.Add(time.Hour)
	r = e.take(bs, both)
	if r.OK || r.Wait == 0 || r.More[0].Wait != 0 || r.More[0].Remaining != 2 {
		e.Errorf("take in the next period with the bucket spent: %+v, want refused by the bucket alone, the window holding 2", r)
	}
}

// testWindowsAccuracy drives a token bucket (5/s, burst 5), a one-minute
// window of 200 and a three-minute window of 450, all on one account,
// with a take every 50 ms of the store's clock for three minutes, and
// checks the count each window admits against what it allows, within 1:
// 5 + 5·t in the first 10 s, 200 in each of the first two minutes (the
// token bucket allows 300), 50 in the third. A refused take takes nothing:
// the token bucket is full again when a new minute starts.
func testWindowsAccuracy(e *env) {
	bs := capability[store.Buckets](e)
	e.needAdvance()
	t0 := e.h.Now()
	b := store.Bucket{Account: e.seedBalance(1, nil, time.Time{}), Key: e.newBucketKey(), Rate: 5, Burst: 5, Cost: 1,
		More: []store.Bucket{{Key: e.newBucketKey(), Burst: 200}, {Key: e.newBucketKey(), Burst: 450, Start: t0, End: t0.Add(3 * time.Minute)}}}
	const step = 50 * time.Millisecond
	var perMinute [3]int
	firstTen := 0
	for i := range int(3 * time.Minute / step) {
		at := time.Duration(i) * step
		minute := int(at / time.Minute)
		b.More[0].Start = t0.Add(time.Duration(minute) * time.Minute)
		b.More[0].End = b.More[0].Start.Add(time.Minute)
		r := e.take(bs, b)
		if at%time.Minute == 0 && minute > 0 && r.Remaining != 4 {
			e.Errorf("first take of minute %d: token bucket Remaining %d, want 4 (refused takes took nothing)", minute, r.Remaining)
		}
		if r.OK {
			perMinute[minute]++
			if at < 10*time.Second {
				firstTen++
			}
		}
		e.h.Advance(step)
	}
	within := func(what string, got, want int) {
		if got < want-1 || got > want+1 {
			e.Errorf("%s: admitted %d, want %d ± 1", what, got, want)
		}
	}
	within("first 10 s (token bucket 5 + 5/s)", firstTen, 5+5*10)
	within("minute 1 (window of 200)", perMinute[0], 200)
	within("minute 2 (window of 200)", perMinute[1], 200)
	within("minute 3 (three-minute window of 450)", perMinute[2], 50)
}

// testWindowsInvalid checks that windows with a repeated key, a period
// that ends before it starts, no burst, or too many of them are errors
// wrapping ErrInvalidAmount.
func testWindowsInvalid(e *env) {
	bs := capability[store.Buckets](e)
	key := e.newBucketKey()
	base := store.Bucket{Key: key, Rate: 1, Burst: 1, Cost: 1}
	now := e.h.Now()
	many := make([]store.Bucket, store.MaxWindows)
	for i := range many {
		many[i] = store.Bucket{Key: e.newBucketKey(), Rate: 1, Burst: 1}
	}
	for what, more := range map[string][]store.Bucket{
		"repeated key":        {{Key: key, Rate: 1, Burst: 1}},
		"repeated more key":   {{Key: "a", Rate: 1, Burst: 1}, {Key: "a", Rate: 1, Burst: 1}},
		"period ends early":   {{Key: "a", Burst: 1, Start: now, End: now.Add(-time.Second)}},
		"fixed without burst": {{Key: "a", Start: now, End: now.Add(time.Second)}},
		"bad rate":            {{Key: "a", Rate: -1, Burst: 1}},
		"too many windows":    many,
	} {
		b := base
		b.More = more
		_, err := bs.TakeTokens(e.ctx, b)
		e.wantErr("TakeTokens("+what+")", err, store.ErrInvalidAmount)
	}
}

// testWindowsExactUnderConcurrency checks that 200 concurrent takes from a
// token bucket of 50 and a fixed window of 30, neither refilling, admit
// exactly 30 and take 30 tokens from the bucket, no more.
func testWindowsExactUnderConcurrency(e *env) {
	bs := capability[store.Buckets](e)
	b := store.Bucket{Account: e.seedBalance(1, nil, time.Time{}), Key: e.newBucketKey(), Rate: tinyRate, Burst: 50, Cost: 1,
		More: []store.Bucket{e.hourAround(e.newBucketKey(), 30)}}
	var admitted atomic.Int64
	e.concurrently("concurrent TakeTokens of two windows", 200, func(int) error {
		r, err := bs.TakeTokens(e.ctx, b)
		if err == nil && r.OK {
			admitted.Add(1)
		}
		return err
	})
	if n := admitted.Load(); n != 30 {
		e.Errorf("admitted %d of 200 takes from a window of 30, want 30", n)
	}
	alone := b
	alone.More, alone.Cost = nil, 20
	e.wantTake("TakeTokens of the 20 tokens left in the bucket", bs, alone, true, 0)
}

// testSpendWithWindows checks that SpendWithTokens with several windows
// debits and takes from every window, or neither: a fixed window that
// refuses debits nothing, a balance that refuses takes from no window.
func testSpendWithWindows(e *env) {
	bs, sp := e.bucketSpender()
	e.debitWithWindows(bs, "SpendWithTokens", func(id string, cost int64, b store.Bucket) (store.SpendResult, store.BucketResult, error) {
		return sp.SpendWithTokens(e.ctx, id, cost, b)
	})
}

// debitWithWindows runs, on an account of 10 credits, the debits of one
// credit, then 100, then one, then one with a token bucket of 5 and a fixed
// window of 2, which debit takes together (SpendWithTokens, HoldWithTokens,
// named name): each admitted debit takes from every window, the refused
// ones debit nothing and take from no window, and 3 tokens are left.
func (e *env) debitWithWindows(bs store.Buckets, name string, debit func(id string, amount int64, b store.Bucket) (store.SpendResult, store.BucketResult, error)) {
	e.Helper()
	id := e.seedBalance(10, nil, time.Time{})
	b := store.Bucket{Account: id, Key: e.newBucketKey(), Rate: tinyRate, Burst: 5, Cost: 1,
		More: []store.Bucket{e.hourAround(e.newBucketKey(), 2)}}
	step := func(what string, amount int64, wantOK, wantWindowsOK bool, wantBalance int64, wantRemaining ...int) {
		e.Helper()
		sr, br, err := debit(id, amount, b)
		if err != nil {
			e.Fatalf("%s: %s: %v", what, name, err)
		}
		if sr.OK != wantOK || br.OK != wantWindowsOK || sr.Balance != wantBalance || len(br.More) != 1 ||
			br.Remaining != wantRemaining[0] || br.More[0].Remaining != wantRemaining[1] {
			e.Errorf("%s: %s(%d) = %+v, %+v; want OK %v, windows OK %v, Balance %d, Remaining %v",
				what, name, amount, sr, br, wantOK, wantWindowsOK, wantBalance, wantRemaining)
		}
	}
	step("both windows and the balance admit", 1, true, true, 9, 4, 1)
	step("the balance refuses: no window taken from", 100, false, true, 9, 4, 1)
	step("all admit again", 1, true, true, 8, 3, 0)
	step("the fixed window refuses: nothing taken, from the balance or a window", 1, false, false, 8, 3, 0)
	alone := b
	alone.More, alone.Cost = nil, 3
	e.wantTake("TakeTokens of the bucket's 3 tokens left", bs, alone, true, 0)
}

// testSpendWithWindowsExactUnderConcurrency checks that 200 concurrent
// spends of one credit from a balance of 30, with a token bucket of 50 and
// a fixed window of 40, admit exactly 30, taking 30 from each window.
func testSpendWithWindowsExactUnderConcurrency(e *env) {
	bs, sp := e.bucketSpender()
	id := e.seedBalance(30, nil, time.Time{})
	b := store.Bucket{Account: id, Key: e.newBucketKey(), Rate: tinyRate, Burst: 50, Cost: 1,
		More: []store.Bucket{e.hourAround(e.newBucketKey(), 40)}}
	var admitted atomic.Int64
	e.concurrently("concurrent SpendWithTokens of two windows", 200, func(int) error {
		sr, br, err := sp.SpendWithTokens(e.ctx, id, 1, b)
		switch {
		case err != nil:
		case !br.OK:
			err = errors.New("a window refused, though each held at least 10 tokens more than the balance allowed")
		case sr.OK:
			admitted.Add(1)
		}
		return err
	})
	if n := admitted.Load(); n != 30 {
		e.Errorf("admitted %d of 200 spends from a balance of 30, want 30", n)
	}
	e.wantBalance(id, 0)
	left := b
	left.Cost = 10
	left.More = []store.Bucket{b.More[0]}
	r := e.take(bs, left)
	if !r.OK || r.Remaining != 10 || r.More[0].Remaining != 0 {
		e.Errorf("TakeTokens of 10 from both windows after the spends: %+v, want OK, 10 left in the bucket and 0 in the window", r)
	}
}
