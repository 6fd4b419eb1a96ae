package storetest

import (
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/go402/go402/store"
)

// valueTests check that Lookup returns plain values: equal to what was
// put, and never changed afterwards by the store.
var valueTests = []subtest{
	{"NeverModified", testValuesNeverModified},
	{"ConcurrentWrites", testValuesConcurrentWrites},
}

// lookup calls Lookup, failing the test on error.
func (e *env) lookup(k store.Key) (store.Key, store.Account) {
	e.Helper()
	gotK, gotA, err := e.h.Store.Lookup(e.ctx, k.Digest)
	if err != nil {
		e.Fatalf("Lookup(key %s): %v", k.Prefix, err)
	}
	return gotK, gotA
}

// checkEqual checks that a key and an account Lookup returned are, by
// reflect.DeepEqual, those put, once the differences the suite allows are
// evened out (see normalAccount).
func (e *env) checkEqual(gotK, k store.Key, gotA, a store.Account) {
	e.Helper()
	if got, want := normalKey(gotK), normalKey(k); !reflect.DeepEqual(got, want) {
		e.Errorf("Lookup returned a Key unequal to the one put:\n got %+v\nwant %+v", got, want)
	}
	if got, want := normalAccount(gotA), normalAccount(a); !reflect.DeepEqual(got, want) {
		e.Errorf("Lookup returned an Account unequal to the one put:\n got %+v\nwant %+v", got, want)
	}
}

// normalKey returns k with its times in UTC.
func normalKey(k store.Key) store.Key {
	k.ExpiresAt, k.CreatedAt, k.LastUsedAt = k.ExpiresAt.UTC(), k.CreatedAt.UTC(), k.LastUsedAt.UTC()
	return k
}

// normalAccount returns a deep copy of a with what the suite lets stores
// change evened out: times in UTC, Features in order, empty Features and
// Metadata nil.
func normalAccount(a store.Account) store.Account {
	a.PeriodEnd, a.RefilledAt = a.PeriodEnd.UTC(), a.RefilledAt.UTC()
	a.Features = slices.Sorted(slices.Values(a.Features))
	a.Metadata = maps.Clone(a.Metadata)
	if len(a.Metadata) == 0 {
		a.Metadata = nil
	}
	if a.Refill != nil {
		r := *a.Refill
		r.Anchor = r.Anchor.UTC()
		a.Refill = &r
	}
	if a.RateLimit != nil {
		rl := *a.RateLimit
		a.RateLimit = &rl
	}
	return a
}

// checkUnchanged fails the test if k or a no longer hold what they held
// when was was copied from them with normalAccount.
func (e *env) checkUnchanged(what string, k, wasK store.Key, a, was store.Account) {
	e.Helper()
	if k != wasK {
		e.Errorf("%s modified a Key Lookup returned:\n got %+v\nwant %+v", what, k, wasK)
	}
	if got := normalAccount(a); !reflect.DeepEqual(got, was) {
		e.Errorf("%s modified an Account Lookup returned:\n got %+v\nwant %+v", what, got, was)
	}
}

// testValuesNeverModified checks that what Lookup returned, including what
// its Features, Metadata, Refill and RateLimit share with the store, keeps
// what it held through every change the store makes: spends, refunds, a
// refill, the account and the key put again.
func testValuesNeverModified(e *env) {
	now := e.now()
	a := store.Account{
		ID: e.newID(), Plan: "free", Features: []string{"reports"}, Balance: 50,
		Refill:     &store.Refill{Amount: 100, Every: day, Anchor: now.Add(-time.Hour)},
		RefilledAt: now.Add(-time.Hour),
		RateLimit:  &store.RateLimit{Rate: 1, Burst: 2},
		Metadata:   map[string]string{"customer": "cus_1"},
	}
	k := e.newKey(a.ID)
	e.seed(a, k)
	gotK, gotA := e.lookup(k)
	was := normalAccount(gotA)

	e.wantSpend(a.ID, 20, store.SpendResult{OK: true, Balance: 30, NextRefill: a.Refill.Anchor.Add(day)})
	if r, ok := e.h.Store.(store.Refunder); ok {
		e.refund(r, a.ID, 5)
	}
	e.checkUnchanged("a spend or a refund", gotK, k, gotA, was)

	if e.h.Advance != nil {
		e.h.Advance(day) // past the next boundary: the next spend refills
		e.spend(a.ID, 1)
		e.checkUnchanged("a refill", gotK, k, gotA, was)
	}

	b := a
	b.Plan, b.Features, b.Metadata = "pro", []string{"export"}, map[string]string{"customer": "cus_2"}
	b.RateLimit = &store.RateLimit{Rate: 9, Burst: 9}
	revoked := k
	revoked.Revoked = true
	e.seed(b, revoked)
	e.checkUnchanged("putting the account and the key again", gotK, k, gotA, was)
}

// testValuesConcurrentWrites reads every field of what Lookup returns
// while other goroutines spend from, refill and put the account and its
// key, so that a store that writes into memory it handed out is caught by
// the race detector.
func testValuesConcurrentWrites(e *env) {
	const workers = 100
	now := e.now()
	a := store.Account{
		ID: e.newID(), Plan: "free", Features: []string{"reports"}, Balance: 1 << 40,
		Refill:    &store.Refill{Amount: 1 << 40, Every: day, Anchor: now.Add(-time.Hour)},
		RateLimit: &store.RateLimit{Rate: 1, Burst: 2},
		Metadata:  map[string]string{"customer": "cus_1"},
	}
	k := e.newKey(a.ID)
	e.seed(a, k)
	e.concurrently("concurrent Lookup/Spend/seed", 3*workers, func(i int) error {
		switch i % 3 {
		case 0:
			_, gotA, err := e.h.Store.Lookup(e.ctx, k.Digest)
			// Read every field, as a handler may.
			_ = normalAccount(gotA)
			return err
		case 1:
			_, err := e.h.Store.Spend(e.ctx, a.ID, 1)
			return err
		default:
			b := a
			b.Plan = "plan-" + randomHex(2)
			return e.h.Seed(e.ctx, b, k)
		}
	})
}
