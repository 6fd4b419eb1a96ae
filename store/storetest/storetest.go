// Package storetest is a conformance suite for implementations of
// [store.Store], in the manner of testing/slogtest: an implementation's own
// test calls [Run] with a function that makes a [Harness], and the suite
// checks lookups, exact spending under concurrency, periodic refills,
// refunds and token buckets against the contracts documented on
// [store.Store] and its optional capabilities [store.Refunder],
// [store.Buckets] and [store.BucketSpender].
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Harness {
//			var clock storetest.Clock // a fake clock, starting at 2025-01-01
//			return storetest.Harness{
//				Store:   store.NewMemory(&store.MemoryOptions{Clock: clock.Now}),
//				Now:     clock.Now,
//				Advance: clock.Advance,
//			}
//		})
//	}
//
// # The harness contract
//
// Run calls the function once per subtest, with that subtest's *testing.T,
// so a harness may register cleanups with t.Cleanup. It may return a fresh
// store every time or the same shared one: every subtest uses account IDs
// ("storetest-" and 16 hex digits) and keys that are new, random and its
// own, and subtests never run in parallel with each other.
//
//   - Store is the store under test. Required.
//   - Seed stores one account and keys belonging to it. If nil, the suite
//     seeds through the store's own methods PutAccount and PutKey (as
//     [store.Memory] has them), and fails if the store has none. Seed must
//     keep every field, including Balance and RefilledAt, exactly as given.
//   - Now returns the current time as the store sees it. If nil, time.Now.
//     A store that reads another clock (a database server's) may return
//     the local time as long as the two clocks agree within 30 seconds:
//     every time the suite builds is whole seconds, at least a minute away
//     from any period boundary or expiry that matters, except in subtests
//     that use Advance.
//   - Advance moves the store's clock (and Now) forward by exactly d. It
//     may be nil when the clock cannot be controlled; the subtests that
//     need it (refill exactly at a boundary, a key expiring while stored)
//     then skip.
//   - Other is a second instance of the store on the same data (another
//     client or connection pool), for the subtests that check atomicity
//     across replicas; they skip if it is nil.
//
// What the suite expects of the store, beyond the documentation of
// [store.Store]: Lookup returns a key and an account equal by
// reflect.DeepEqual to those put, except that times (ExpiresAt, CreatedAt,
// PeriodEnd, Refill.Anchor, RefilledAt, all whole seconds) may come back
// in another location, Features in any order, and empty Features and
// Metadata as nil; nothing a Lookup returned changes afterwards, also while
// goroutines look up and others write, which -race checks. Once an account
// has been spent from, its balance is read only through Spend with a cost
// of zero, never through Lookup, and no key is looked up again after it changed, so stores that
// cache lookups (whose Account.Balance is stale by design) pass. The refund
// subtests run only if the store implements [store.Refunder], and skip
// otherwise.
//
// # Token buckets
//
// The Buckets group runs only if the store implements [store.Buckets], and
// skips otherwise; its SpendWithTokens subtests run only if the store
// implements [store.BucketSpender] too. It checks TakeTokens step by step
// against golang.org/x/time/rate (OK and Remaining exactly, Wait and Full
// within a microsecond, after clock steps of whole milliseconds, so a
// bucket clock of microsecond resolution suffices); that the bucket Key of
// a stand-alone bucket, of one account and of another are three buckets;
// that concurrent takes admit exactly the burst; and that SpendWithTokens
// takes tokens and credits together or not at all, also under
// concurrency. Beyond the documentation of [store.Bucket], it expects a
// Rate that is not positive (or NaN), a Burst that is not positive or a
// negative Cost to yield an error wrapping [store.ErrInvalidAmount], from
// TakeTokens and SpendWithTokens alike; a Rate of +Inf to admit any Cost;
// and SpendWithTokens to report the account's balance in its SpendResult
// even when the bucket refused. Subtests that compare against
// golang.org/x/time/rate or wait for tokens need Advance.
//
// # Administration
//
// The Admin group runs only if the store implements [store.Admin], and
// skips otherwise. It checks that Account returns what PutAccount stored;
// that UpdateAccount applies what fn changes, balance included, returns an
// error of fn unchanged and then changes nothing, and loses nothing to
// spends and top-ups running at the same time; that Accounts pages through
// accounts in order of ID; TopUp's amounts and errors; that CreateKey's key
// authenticates and its display prefix is not the key; that Keys lists an
// account's keys, revoked and expired ones included, and no other's; and
// that TouchKeys keeps the later time, ignores unknown digests and never
// un-revokes a key. Unknown accounts and keys yield errors wrapping
// [store.ErrNotFound].
//
// # Spend caps and thresholds
//
// The Caps group runs only if the store implements [store.SpendCapper],
// and skips otherwise. It checks that a daily [store.SpendCap] admits
// spends up to its limit exactly and refuses the one beyond, debiting
// nothing, with the period's end as ResetAt; that a refund gives room back;
// that the next period starts from zero (with Advance); and that 64 spends
// from 8 goroutines report a cap percentage and a balance level each
// exactly once, also through two instances of the store when the harness
// sets Other, and once more only in the next period, even after a refund
// took the spending back below it. A monthly cap's period is the calendar
// month, or runs from the account's billing anchor, through short months
// and leap years (with Advance).
//
// Concurrency subtests run 200 goroutines; run the suite with -race.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/go402/go402/store"
)

// Harness is a store under test and the means to seed it and to read and
// move its clock. See the package documentation for the contract each field
// must meet.
type Harness struct {
	// Store is the store under test. Required.
	Store store.Store

	// Seed stores a and keys, which belong to a, replacing any account with
	// the same ID and any keys with the same digests. If nil, the store's
	// own PutAccount and PutKey methods are used.
	Seed func(ctx context.Context, a store.Account, keys ...store.Key) error

	// Now returns the store's current time. If nil, time.Now is used.
	Now func() time.Time

	// Advance moves the store's clock forward by d. If nil, subtests that
	// need a controlled clock skip.
	Advance func(d time.Duration)

	// Other, if set, is a second instance of the store (another client or
	// pool) on the same data and clock, for subtests across instances;
	// they skip if it is nil.
	Other store.Store
}

// Run runs the conformance suite as subtests of t, calling newHarness once
// for each subtest.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	groups := []struct {
		name  string
		tests []subtest
	}{
		{"Lookup", lookupTests},
		{"Values", valueTests},
		{"Spend", spendTests},
		{"Refill", refillTests},
		{"Refund", refundTests},
		{"Holds", holdTests},
		{"Buckets", bucketTests},
		{"Admin", adminTests},
		{"AdminRace", adminRaceTests},
		{"Caps", capsTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, st := range g.tests {
				t.Run(st.name, func(t *testing.T) {
					st.run(newEnv(t, newHarness(t)))
				})
			}
		})
	}
}

// subtest is one named check of the suite.
type subtest struct {
	name string
	run  func(e *env)
}

// env is what a subtest works with: the harness and helpers that fail the
// test on unexpected errors.
type env struct {
	*testing.T
	h   Harness
	ctx context.Context
}

func newEnv(t *testing.T, h Harness) *env {
	t.Helper()
	if h.Store == nil {
		t.Fatal("storetest: Harness.Store is nil")
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	if h.Seed == nil {
		admin, ok := h.Store.(seeder)
		if !ok {
			t.Fatalf("storetest: Harness.Seed is nil and %T has no PutAccount and PutKey methods", h.Store)
		}
		h.Seed = func(ctx context.Context, a store.Account, keys ...store.Key) error {
			if err := admin.PutAccount(ctx, a); err != nil {
				return err
			}
			for _, k := range keys {
				if err := admin.PutKey(ctx, k); err != nil {
					return err
				}
			}
			return nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &env{T: t, h: h, ctx: ctx}
}

// seeder is a store that manages its accounts and keys itself, as
// [store.Memory] does.
type seeder interface {
	PutAccount(ctx context.Context, a store.Account) error
	PutKey(ctx context.Context, k store.Key) error
}

// now returns the store's time, truncated to the second.
func (e *env) now() time.Time { return e.h.Now().Truncate(time.Second) }

// capability returns the store under test as a T, one of the optional
// capability interfaces, or skips the subtest if it does not implement it.
func capability[T any](e *env) T {
	e.Helper()
	c, ok := e.h.Store.(T)
	if !ok {
		e.Skipf("storetest: %T does not implement %v", e.h.Store, reflect.TypeFor[T]())
	}
	return c
}

// needAdvance skips the subtest if the harness cannot move the clock.
func (e *env) needAdvance() {
	e.Helper()
	if e.h.Advance == nil {
		e.Skip("storetest: Harness.Advance is nil; this subtest needs a controlled clock")
	}
}

// newID returns a fresh account ID.
func (e *env) newID() string { return "storetest-" + randomHex(8) }

// newKey returns a fresh key for accountID, with a display prefix.
func (e *env) newKey(accountID string) store.Key {
	e.Helper()
	raw, err := store.GenerateKey("sk_storetest_")
	if err != nil {
		e.Fatal(err)
	}
	return store.NewKey(raw, accountID)
}

// seed stores a and keys, failing the test on error.
func (e *env) seed(a store.Account, keys ...store.Key) {
	e.Helper()
	if err := e.h.Seed(e.ctx, a, keys...); err != nil {
		e.Fatalf("seed account %q: %v", a.ID, err)
	}
}

// seedBalance stores a new account with the given balance and refill and
// returns its ID.
func (e *env) seedBalance(balance int64, r *store.Refill, refilledAt time.Time) string {
	e.Helper()
	a := store.Account{ID: e.newID(), Plan: "test", Balance: balance, Refill: r, RefilledAt: refilledAt}
	e.seed(a)
	return a.ID
}

// spend calls Spend, failing the test on error.
func (e *env) spend(id string, cost int64) store.SpendResult {
	e.Helper()
	r, err := e.h.Store.Spend(e.ctx, id, cost)
	if err != nil {
		e.Fatalf("Spend(%q, %d): %v", id, cost, err)
	}
	return r
}

// wantSpend calls Spend and checks its result.
func (e *env) wantSpend(id string, cost int64, want store.SpendResult) {
	e.Helper()
	got := e.spend(id, cost)
	if got.OK != want.OK || got.Balance != want.Balance || !got.NextRefill.Equal(want.NextRefill) {
		e.Errorf("Spend(%d) = {OK:%v Balance:%d NextRefill:%v}, want {OK:%v Balance:%d NextRefill:%v}",
			cost, got.OK, got.Balance, got.NextRefill, want.OK, want.Balance, want.NextRefill)
	}
}

// balance reads an account's balance through a Spend of zero.
func (e *env) balance(id string) int64 {
	e.Helper()
	r := e.spend(id, 0)
	if !r.OK {
		e.Errorf("Spend(0) refused: %+v", r)
	}
	return r.Balance
}

// wantBalance checks an account's balance.
func (e *env) wantBalance(id string, want int64) {
	e.Helper()
	if got := e.balance(id); got != want {
		e.Errorf("balance = %d, want %d", got, want)
	}
}

// wantErr checks that err wraps target.
func (e *env) wantErr(what string, err, target error) {
	e.Helper()
	if !errors.Is(err, target) {
		e.Errorf("%s: error %v, want one wrapping %v", what, err, target)
	}
}

// randomHex returns n random bytes in hexadecimal.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("storetest: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// concurrently runs f(0) … f(n-1) in n goroutines released together, waits
// for all, and fails the test with the first error one returned (what
// names the calls in the message).
func (e *env) concurrently(what string, n int, f func(i int) error) {
	e.Helper()
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = f(i)
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			e.Fatalf("%s: %v", what, err)
		}
	}
}
