package storetest

import (
	"maps"
	"slices"
	"time"

	"github.com/go402/go402/store"
)

var sharedLookupTests = []subtest{
	{"MatchesLookup", testSharedLookupMatchesLookup},
	{"UnknownKey", testSharedLookupUnknownKey},
	{"RecordsNeverModified", testSharedLookupRecordsNeverModified},
	{"ConcurrentWrites", testSharedLookupConcurrentWrites},
}

// lookupShared calls LookupShared, failing the test on error or on a nil
// record.
func (e *env) lookupShared(s store.SharedLookup, k store.Key) (*store.Key, *store.Account, int64) {
	e.Helper()
	gotK, gotA, balance, err := s.LookupShared(e.ctx, k.Digest)
	if err != nil {
		e.Fatalf("LookupShared(key %s): %v", k.Prefix, err)
	}
	if gotK == nil || gotA == nil {
		e.Fatalf("LookupShared(key %s) = %p, %p: nil record without an error", k.Prefix, gotK, gotA)
	}
	return gotK, gotA, balance
}

// testSharedLookupMatchesLookup checks that every field of a key and its
// account survives a round trip through LookupShared, with the balance
// returned apart.
func testSharedLookupMatchesLookup(e *env) {
	s := capability[store.SharedLookup](e)
	a, k := e.seedFullKey()
	gotK, gotA, balance := e.lookupShared(s, k)
	e.checkKey(*gotK, k)
	acct := *gotA
	acct.Balance = balance
	e.checkAccount(acct, a)
}

// testSharedLookupUnknownKey checks that a key never stored is not found.
func testSharedLookupUnknownKey(e *env) {
	s := capability[store.SharedLookup](e)
	a := store.Account{ID: e.newID()}
	e.seed(a, e.newKey(a.ID))
	_, _, _, err := s.LookupShared(e.ctx, e.newKey(a.ID).Digest)
	e.wantErr("LookupShared(unknown key)", err, store.ErrNotFound)
}

// sharedCopy is a deep copy of what a shared key and account held.
type sharedCopy struct {
	key     store.Key
	account store.Account
}

// copyShared deep-copies k and a.
func copyShared(k *store.Key, a *store.Account) sharedCopy {
	return sharedCopy{*k, a.Clone()}
}

// checkUnchanged fails the test if k or a no longer hold what was copied.
func (e *env) checkUnchanged(what string, k *store.Key, a *store.Account, was sharedCopy) {
	e.Helper()
	if *k != was.key {
		e.Errorf("%s modified a shared Key in place:\n got %+v\nwant %+v", what, *k, was.key)
	}
	if a.ID != was.account.ID || a.Plan != was.account.Plan || a.Status != was.account.Status ||
		a.Balance != was.account.Balance || !a.PeriodEnd.Equal(was.account.PeriodEnd) ||
		!a.RefilledAt.Equal(was.account.RefilledAt) || !slices.Equal(a.Features, was.account.Features) ||
		!maps.Equal(a.Metadata, was.account.Metadata) ||
		(a.Refill == nil) != (was.account.Refill == nil) || a.Refill != nil && *a.Refill != *was.account.Refill ||
		(a.RateLimit == nil) != (was.account.RateLimit == nil) || a.RateLimit != nil && *a.RateLimit != *was.account.RateLimit {
		e.Errorf("%s modified a shared Account in place:\n got %+v\nwant %+v", what, *a, was.account)
	}
}

// testSharedLookupRecordsNeverModified checks that the records LookupShared
// handed out keep what they held through every change the store makes:
// spends, refunds, a refill, the account and the key put again.
func testSharedLookupRecordsNeverModified(e *env) {
	s := capability[store.SharedLookup](e)
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
	gotK, gotA, balance := e.lookupShared(s, k)
	if balance != 50 {
		e.Errorf("LookupShared balance = %d, want 50", balance)
	}
	was := copyShared(gotK, gotA)

	e.wantSpend(a.ID, 20, store.SpendResult{OK: true, Balance: 30, NextRefill: a.Refill.Anchor.Add(day)})
	if r, ok := e.h.Store.(store.Refunder); ok {
		e.refund(r, a.ID, 5)
	}
	e.checkUnchanged("a spend or a refund", gotK, gotA, was)

	if e.h.Advance != nil {
		e.h.Advance(day) // past the next boundary: the next spend refills
		e.spend(a.ID, 1)
		e.checkUnchanged("a refill", gotK, gotA, was)
	}

	b := a
	b.Plan, b.Features, b.Metadata = "pro", []string{"export"}, map[string]string{"customer": "cus_2"}
	b.RateLimit = &store.RateLimit{Rate: 9, Burst: 9}
	revoked := k
	revoked.Revoked = true
	e.seed(b, revoked)
	e.checkUnchanged("putting the account and the key again", gotK, gotA, was)
}

// testSharedLookupConcurrentWrites reads every field of shared records
// while other goroutines spend from, refill and put the account and its
// key, so that a store that writes into a record it handed out is caught by
// the race detector.
func testSharedLookupConcurrentWrites(e *env) {
	const workers = 100
	s := capability[store.SharedLookup](e)
	now := e.now()
	a := store.Account{
		ID: e.newID(), Plan: "free", Features: []string{"reports"}, Balance: 1 << 40,
		Refill:    &store.Refill{Amount: 1 << 40, Every: day, Anchor: now.Add(-time.Hour)},
		RateLimit: &store.RateLimit{Rate: 1, Burst: 2},
		Metadata:  map[string]string{"customer": "cus_1"},
	}
	k := e.newKey(a.ID)
	e.seed(a, k)
	e.concurrently("concurrent LookupShared/Spend/seed", 3*workers, func(i int) error {
		switch i % 3 {
		case 0:
			gotK, gotA, _, err := s.LookupShared(e.ctx, k.Digest)
			if err != nil {
				return err
			}
			// Read every field, as a handler may.
			_ = copyShared(gotK, gotA)
			return nil
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
