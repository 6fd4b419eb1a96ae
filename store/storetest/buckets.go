package storetest

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/go402/go402/store"
	"golang.org/x/time/rate"
)

var bucketTests = []subtest{
	{"MatchesRate", testBucketsMatchRate},
	{"MatchesRateReconfigured", testBucketsMatchRateReconfigured},
	{"Invalid", testBucketsInvalid},
	{"Distinct", testBucketsDistinct},
	{"ExactUnderConcurrency", testBucketsExactUnderConcurrency},
	{"SpendWithTokens", testSpendWithTokens},
	{"SpendWithTokensErrors", testSpendWithTokensErrors},
	{"SpendWithTokensExactUnderConcurrency", testSpendWithTokensExactUnderConcurrency},
	{"WindowsAllOrNone", testWindowsAllOrNone},
	{"WindowsAccuracy", testWindowsAccuracy},
	{"WindowsInvalid", testWindowsInvalid},
	{"WindowsExactUnderConcurrency", testWindowsExactUnderConcurrency},
	{"SpendWithWindows", testSpendWithWindows},
	{"SpendWithWindowsExactUnderConcurrency", testSpendWithWindowsExactUnderConcurrency},
	{"HoldWithTokens", testHoldWithTokens},
	{"HoldWithTokensErrors", testHoldWithTokensErrors},
	{"HoldWithWindows", testHoldWithWindows},
	{"HoldWithTokensExactUnderConcurrency", testHoldWithTokensExactUnderConcurrency},
	{"Slots", testSlots},
	{"SlotsLease", testSlotsLease},
	{"SlotsExactUnderConcurrency", testSlotsExactUnderConcurrency},
}

// tinyRate is a refill rate at which no token comes back while a subtest
// runs (one every 11.6 days).
const tinyRate = 1e-6

// bucketSpender returns the store as a Buckets and a BucketSpender, or
// skips the subtest.
func (e *env) bucketSpender() (store.Buckets, store.BucketSpender) {
	e.Helper()
	return capability[store.Buckets](e), capability[store.BucketSpender](e)
}

// newBucketKey returns a fresh bucket key.
func (e *env) newBucketKey() string { return "storetest-" + randomHex(8) }

// take calls TakeTokens, failing the test on error.
func (e *env) take(bs store.Buckets, b store.Bucket) store.BucketResult {
	e.Helper()
	r, err := bs.TakeTokens(e.ctx, b)
	if err != nil {
		e.Fatalf("TakeTokens(%+v): %v", b, err)
	}
	return r
}

// wantTake calls TakeTokens and checks OK and Remaining.
func (e *env) wantTake(what string, bs store.Buckets, b store.Bucket, wantOK bool, wantRemaining int) {
	e.Helper()
	r := e.take(bs, b)
	if r.OK != wantOK || r.Remaining != wantRemaining {
		e.Errorf("%s: TakeTokens(cost %d) = %+v, want OK %v Remaining %d", what, b.Cost, r, wantOK, wantRemaining)
	}
}

// testBucketsMatchRate checks TakeTokens against golang.org/x/time/rate,
// step by step, with random costs (sometimes above the burst) and random
// clock steps of whole milliseconds: OK and Remaining exactly, Full and
// Wait within a microsecond.
func testBucketsMatchRate(e *env) {
	bs := capability[store.Buckets](e)
	e.needAdvance()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		rate  float64
		burst int
	}{{1, 1}, {10, 5}, {0.5, 3}, {1000, 100}, {3.7, 20}} {
		b := store.Bucket{Key: e.newBucketKey(), Rate: c.rate, Burst: c.burst}
		lim := rate.NewLimiter(rate.Limit(c.rate), c.burst)
		for step := range 200 {
			e.h.Advance(time.Duration(rng.Int64N(int64(2000/c.rate)+1)) * time.Millisecond)
			now := e.h.Now()
			b.Cost = rng.IntN(c.burst + 2)
			wantOK := lim.AllowN(now, b.Cost)
			tokens := lim.TokensAt(now)
			got := e.take(bs, b)
			if got.OK != wantOK || got.Remaining != int(math.Floor(tokens)) {
				e.Fatalf("rate %v burst %d step %d: take %d = %+v, want OK %v Remaining %v",
					c.rate, c.burst, step, b.Cost, got, wantOK, math.Floor(tokens))
			}
			wantFull := time.Duration((float64(c.burst) - tokens) / c.rate * float64(time.Second))
			if d := got.Full - wantFull; d < -time.Microsecond || d > time.Microsecond {
				e.Fatalf("rate %v burst %d step %d: Full = %v, want %v", c.rate, c.burst, step, got.Full, wantFull)
			}
			switch {
			case b.Cost > c.burst:
				if got.Wait >= 0 {
					e.Fatalf("rate %v burst %d step %d: cost %d > burst, Wait = %v, want negative",
						c.rate, c.burst, step, b.Cost, got.Wait)
				}
			case float64(b.Cost) <= tokens:
				if got.Wait != 0 {
					e.Fatalf("rate %v burst %d step %d: Wait = %v with %v tokens for cost %d, want 0",
						c.rate, c.burst, step, got.Wait, tokens, b.Cost)
				}
			default:
				wantWait := time.Duration((float64(b.Cost) - tokens) / c.rate * float64(time.Second))
				if d := got.Wait - wantWait; d < -time.Microsecond || d > time.Microsecond {
					e.Fatalf("rate %v burst %d step %d: Wait = %v, want %v", c.rate, c.burst, step, got.Wait, wantWait)
				}
			}
		}
	}
}

// testBucketsMatchRateReconfigured checks TakeTokens against
// golang.org/x/time/rate when the bucket's Rate and Burst change between
// takes (an account's plan or override changed): the tokens gained until
// the change count at the old rate, up to the old burst, as
// rate.Limiter's SetLimitAt and SetBurstAt have it. OK and Remaining
// exactly, after clock steps of whole milliseconds.
func testBucketsMatchRateReconfigured(e *env) {
	bs := capability[store.Buckets](e)
	e.needAdvance()
	rng := rand.New(rand.NewPCG(5, 6))
	limits := []store.RateLimit{{Rate: 1, Burst: 10}, {Rate: 4, Burst: 3}, {Rate: 0.5, Burst: 20}, {Rate: 10, Burst: 10}}
	lim := limits[0]
	b := store.Bucket{Key: e.newBucketKey(), Rate: lim.Rate, Burst: lim.Burst}
	twin := rate.NewLimiter(rate.Limit(lim.Rate), lim.Burst)
	for step := range 300 {
		e.h.Advance(time.Duration(rng.Int64N(3000)) * time.Millisecond)
		now := e.h.Now()
		if next := limits[rng.IntN(len(limits))]; step > 0 && next != lim && rng.IntN(4) == 0 {
			if next.Rate != lim.Rate {
				twin.SetLimitAt(now, rate.Limit(next.Rate))
			}
			if next.Burst != lim.Burst {
				twin.SetBurstAt(now, next.Burst)
			}
			lim, b.Rate, b.Burst = next, next.Rate, next.Burst
		}
		b.Cost = rng.IntN(lim.Burst + 2)
		wantOK := twin.AllowN(now, b.Cost)
		tokens := twin.TokensAt(now)
		if got := e.take(bs, b); got.OK != wantOK || got.Remaining != int(math.Floor(tokens)) {
			e.Fatalf("step %d, rate %v burst %d: take %d = %+v, want OK %v Remaining %v",
				step, lim.Rate, lim.Burst, b.Cost, got, wantOK, math.Floor(tokens))
		}
	}
}

// testBucketsInvalid checks that a bucket with a rate that is not positive
// (or NaN), a burst that is not positive or a negative cost is an error
// wrapping ErrInvalidAmount, and that an infinite rate admits any cost.
func testBucketsInvalid(e *env) {
	bs := capability[store.Buckets](e)
	key := e.newBucketKey()
	for _, b := range []store.Bucket{
		{Key: key, Rate: 0, Burst: 1, Cost: 1},
		{Key: key, Rate: -1, Burst: 1, Cost: 1},
		{Key: key, Rate: math.NaN(), Burst: 1, Cost: 1},
		{Key: key, Rate: 1, Burst: 0, Cost: 1},
		{Key: key, Rate: 1, Burst: -1, Cost: 1},
		{Key: key, Rate: 1, Burst: 1, Cost: -1},
	} {
		_, err := bs.TakeTokens(e.ctx, b)
		e.wantErr("TakeTokens(invalid bucket)", err, store.ErrInvalidAmount)
	}
	if r := e.take(bs, store.Bucket{Key: key, Rate: math.Inf(1), Burst: 3, Cost: 100}); !r.OK {
		e.Errorf("TakeTokens(infinite rate, cost 100 > burst 3) = %+v, want OK", r)
	}
}

// testBucketsDistinct checks that a stand-alone bucket and an account's
// bucket with the same Key are distinct, and so are two accounts' buckets
// with the same Key.
func testBucketsDistinct(e *env) {
	bs := capability[store.Buckets](e)
	key := e.newBucketKey()
	alone := store.Bucket{Key: key, Rate: tinyRate, Burst: 1, Cost: 1}
	mine := alone
	mine.Account = e.seedBalance(100, nil, time.Time{})
	theirs := alone
	theirs.Account = e.seedBalance(100, nil, time.Time{})
	for _, b := range []store.Bucket{alone, mine, theirs} {
		e.wantTake("first take of a full bucket "+bucketName(b), bs, b, true, 0)
	}
	for _, b := range []store.Bucket{alone, mine, theirs} {
		e.wantTake("second take of "+bucketName(b), bs, b, false, 0)
	}
}

// bucketName describes b in failure messages.
func bucketName(b store.Bucket) string {
	if b.Account == "" {
		return "stand-alone bucket " + b.Key
	}
	return "bucket " + b.Key + " of account " + b.Account
}

// testBucketsExactUnderConcurrency checks that 200 concurrent takes of one
// token from a full bucket of 50 that does not refill admit exactly 50.
func testBucketsExactUnderConcurrency(e *env) {
	const (
		workers = 200
		burst   = 50
	)
	bs := capability[store.Buckets](e)
	b := store.Bucket{Key: e.newBucketKey(), Rate: tinyRate, Burst: burst, Cost: 1}
	var admitted atomic.Int64
	e.concurrently("concurrent TakeTokens", workers, func(int) error {
		r, err := bs.TakeTokens(e.ctx, b)
		if err == nil && r.OK {
			admitted.Add(1)
		}
		return err
	})
	if n := admitted.Load(); n != burst {
		e.Errorf("admitted %d of %d takes from a bucket of %d, want %d", n, workers, burst, burst)
	}
}

// testSpendWithTokens checks that SpendWithTokens takes tokens and credits
// together or neither, whichever refuses, that a BucketResult reports the
// bucket as it is, and that TakeTokens on the account's bucket draws on the
// same tokens.
func testSpendWithTokens(e *env) {
	bs, sp := e.bucketSpender()
	e.needAdvance()
	id := e.seedBalance(10, nil, time.Time{})
	b := store.Bucket{Account: id, Key: e.newBucketKey(), Rate: 1, Burst: 2, Cost: 1}
	step := func(what string, cost int64, wantOK, wantBucketOK bool, wantBalance int64, wantRemaining int) {
		e.Helper()
		sr, br, err := sp.SpendWithTokens(e.ctx, id, cost, b)
		if err != nil {
			e.Fatalf("%s: SpendWithTokens(%d): %v", what, cost, err)
		}
		if sr.OK != wantOK || br.OK != wantBucketOK || sr.Balance != wantBalance || br.Remaining != wantRemaining {
			e.Errorf("%s: SpendWithTokens(%d) = %+v, %+v; want OK %v, bucket OK %v, Balance %d, Remaining %d",
				what, cost, sr, br, wantOK, wantBucketOK, wantBalance, wantRemaining)
		}
	}
	step("both allow", 1, true, true, 9, 1)
	step("credits refuse, no token taken", 100, false, true, 9, 1)
	step("both allow again", 1, true, true, 8, 0)
	step("bucket refuses, no credit taken", 1, false, false, 8, 0)
	step("both refuse", 100, false, false, 8, 0)
	e.h.Advance(time.Second)
	step("a token later", 3, true, true, 5, 0)

	// TakeTokens draws on the same bucket; a stand-alone bucket with the
	// same Key is another one.
	e.wantTake("TakeTokens on the drained account bucket", bs, b, false, 0)
	alone := b
	alone.Account = ""
	e.wantTake("TakeTokens on a stand-alone bucket with the same Key", bs, alone, true, 1)
	e.h.Advance(time.Second)
	e.wantTake("TakeTokens on the account bucket a second later", bs, b, true, 0)
	step("bucket drained by TakeTokens", 1, false, false, 5, 0)

	inf := store.Bucket{Account: id, Key: b.Key, Rate: math.Inf(1), Burst: 1, Cost: 5}
	sr, br, err := sp.SpendWithTokens(e.ctx, id, 5, inf)
	if err != nil || !sr.OK || !br.OK || sr.Balance != 0 {
		e.Errorf("SpendWithTokens(5, infinite rate, cost 5 > burst 1) = %+v, %+v, %v; want both OK, Balance 0", sr, br, err)
	}
}

// testSpendWithTokensErrors checks that SpendWithTokens refuses with an
// error, debiting nothing and taking no tokens, a bucket that is not the
// account's own, an unknown account, a negative cost and an invalid bucket.
func testSpendWithTokensErrors(e *env) {
	bs, sp := e.bucketSpender()
	id := e.seedBalance(10, nil, time.Time{})
	other := e.seedBalance(10, nil, time.Time{})
	key := e.newBucketKey()
	mine := store.Bucket{Account: id, Key: key, Rate: tinyRate, Burst: 1, Cost: 1}
	for _, foreign := range []store.Bucket{
		{Key: key, Rate: tinyRate, Burst: 1, Cost: 1},
		{Key: "acct:" + id, Rate: tinyRate, Burst: 1, Cost: 1},
		{Account: other, Key: key, Rate: tinyRate, Burst: 1, Cost: 1},
		{Account: other, Key: key, Rate: math.Inf(1), Burst: 1, Cost: 1},
		{Account: e.newID(), Key: key, Rate: tinyRate, Burst: 1, Cost: 1},
	} {
		if _, _, err := sp.SpendWithTokens(e.ctx, id, 1, foreign); err == nil {
			e.Errorf("SpendWithTokens(%q, %s): no error for a bucket not the account's own", id, bucketName(foreign))
		}
	}
	_, _, err := sp.SpendWithTokens(e.ctx, id, -1, mine)
	e.wantErr("SpendWithTokens(negative cost)", err, store.ErrInvalidAmount)
	for _, invalid := range []store.Bucket{
		{Account: id, Key: key, Rate: 0, Burst: 1, Cost: 1},
		{Account: id, Key: key, Rate: math.NaN(), Burst: 1, Cost: 1},
		{Account: id, Key: key, Rate: 1, Burst: 0, Cost: 1},
		{Account: id, Key: key, Rate: 1, Burst: 1, Cost: -1},
	} {
		_, _, err := sp.SpendWithTokens(e.ctx, id, 1, invalid)
		e.wantErr("SpendWithTokens(invalid bucket)", err, store.ErrInvalidAmount)
	}
	e.wantBalance(id, 10)
	e.wantBalance(other, 10)
	// The account's and the other account's buckets are still full.
	e.wantTake("TakeTokens after the refused calls", bs, mine, true, 0)
	theirs := mine
	theirs.Account = other
	e.wantTake("TakeTokens on the other account's bucket", bs, theirs, true, 0)

	// An unknown account: ErrNotFound, and no token taken, as the account
	// stored afterwards finds its bucket full.
	nobody := e.newID()
	nobodys := store.Bucket{Account: nobody, Key: key, Rate: tinyRate, Burst: 1, Cost: 1}
	_, _, err = sp.SpendWithTokens(e.ctx, nobody, 1, nobodys)
	e.wantErr("SpendWithTokens(unknown account)", err, store.ErrNotFound)
	e.seed(store.Account{ID: nobody, Plan: "test", Balance: 10})
	e.wantTake("TakeTokens on the bucket of an account stored after a refused spend", bs, nobodys, true, 0)
}

// testSpendWithTokensExactUnderConcurrency checks that 200 concurrent
// spends of one credit and one token, from a balance of 30 and a bucket of
// 50 that does not refill, admit exactly 30, and that tokens are taken only
// for the spends admitted: 20 are left.
func testSpendWithTokensExactUnderConcurrency(e *env) {
	const (
		workers = 200
		balance = 30
		burst   = 50
	)
	bs, sp := e.bucketSpender()
	id := e.seedBalance(balance, nil, time.Time{})
	b := store.Bucket{Account: id, Key: e.newBucketKey(), Rate: tinyRate, Burst: burst, Cost: 1}
	var admitted atomic.Int64
	e.concurrently("concurrent SpendWithTokens", workers, func(int) error {
		sr, br, err := sp.SpendWithTokens(e.ctx, id, 1, b)
		switch {
		case err != nil:
		case !br.OK:
			err = errors.New("the bucket refused, though it never held fewer than 20 tokens")
		case sr.OK:
			admitted.Add(1)
		}
		return err
	})
	if n := admitted.Load(); n != balance {
		e.Errorf("admitted %d of %d spends from a balance of %d, want %d", n, workers, balance, balance)
	}
	e.wantBalance(id, 0)
	b.Cost = burst - balance
	e.wantTake("TakeTokens of the tokens left", bs, b, true, 0)
}
