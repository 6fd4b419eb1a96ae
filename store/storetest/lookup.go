package storetest

import (
	"time"

	"github.com/go402/go402/store"
)

var lookupTests = []subtest{
	{"KnownKey", testLookupKnownKey},
	{"KeysOfTwoAccounts", testLookupKeysOfTwoAccounts},
	{"UnknownKey", testLookupUnknownKey},
	{"RevokedKey", testLookupRevokedKey},
	{"ExpiredKey", testLookupExpiredKey},
	{"KeyExpiresWhileStored", testLookupKeyExpiresWhileStored},
}

// testLookupKnownKey checks that what Lookup returns is, by
// reflect.DeepEqual, the key and account that were put, every field set.
func testLookupKnownKey(e *env) {
	a, k := e.seedFullKey()
	gotK, gotA := e.lookup(k)
	e.checkEqual(gotK, k, gotA, a)
}

// seedFullKey stores an account and a key with every field set, and
// returns them as seeded.
func (e *env) seedFullKey() (store.Account, store.Key) {
	e.Helper()
	now := e.now().UTC()
	a := store.Account{
		ID:        e.newID(),
		Plan:      "pro",
		Status:    store.StatusTrialing,
		PeriodEnd: now.Add(30 * day),
		Features:  []string{"reports", "export"},
		Balance:   1234,
		// Applied at its anchor, next due in 30 days: no refill is due,
		// so even a store that applies refills on lookup keeps 1234.
		Refill:     &store.Refill{Amount: 5000, Every: 30 * day, Anchor: now.Add(-day)},
		RefilledAt: now.Add(-day),
		RateLimit:  &store.RateLimit{Rate: 2.5, Burst: 10},
		Metadata:   map[string]string{"customer": "cus_123", "region": "eu"},
	}
	k := e.newKey(a.ID)
	k.ExpiresAt = now.Add(90 * day)
	k.CreatedAt = now.Add(-time.Hour)
	e.seed(a, k)
	return a, k
}

// testLookupKeysOfTwoAccounts checks that each key resolves to its own
// account, and that an account may have several keys.
func testLookupKeysOfTwoAccounts(e *env) {
	a1 := store.Account{ID: e.newID(), Plan: "free"}
	a2 := store.Account{ID: e.newID(), Plan: "pro", Balance: 7}
	k1, k2a, k2b := e.newKey(a1.ID), e.newKey(a2.ID), e.newKey(a2.ID)
	e.seed(a1, k1)
	e.seed(a2, k2a, k2b)
	for _, tc := range []struct {
		k store.Key
		a store.Account
	}{{k1, a1}, {k2a, a2}, {k2b, a2}} {
		gotK, gotA := e.lookup(tc.k)
		e.checkEqual(gotK, tc.k, gotA, tc.a)
	}
}

// testLookupUnknownKey checks that a key never stored is not found.
func testLookupUnknownKey(e *env) {
	a := store.Account{ID: e.newID()}
	e.seed(a, e.newKey(a.ID))
	unknown := e.newKey(a.ID)
	_, _, err := e.h.Store.Lookup(e.ctx, unknown.Digest)
	e.wantErr("Lookup(unknown key)", err, store.ErrNotFound)
}

// testLookupRevokedKey checks that a revoked key is returned, marked
// revoked, and that it does not affect another key of the account.
func testLookupRevokedKey(e *env) {
	a := store.Account{ID: e.newID(), Balance: 10}
	revoked, live := e.newKey(a.ID), e.newKey(a.ID)
	revoked.Revoked = true
	e.seed(a, revoked, live)
	for _, k := range []store.Key{revoked, live} {
		got, gotA, err := e.h.Store.Lookup(e.ctx, k.Digest)
		if err != nil {
			e.Errorf("Lookup(revoked=%v): %v; revoked keys must be returned, not hidden", k.Revoked, err)
			continue
		}
		if got.Revoked != k.Revoked {
			e.Errorf("Lookup: Revoked = %v, want %v", got.Revoked, k.Revoked)
		}
		if gotA.ID != a.ID {
			e.Errorf("Lookup: account %q, want %q", gotA.ID, a.ID)
		}
	}
}

// testLookupExpiredKey checks that keys past and before their expiry are
// both returned, with ExpiresAt intact so the caller can tell them apart.
func testLookupExpiredKey(e *env) {
	now := e.now()
	a := store.Account{ID: e.newID()}
	expired, valid := e.newKey(a.ID), e.newKey(a.ID)
	expired.ExpiresAt = now.Add(-time.Hour)
	valid.ExpiresAt = now.Add(time.Hour)
	e.seed(a, expired, valid)
	for _, k := range []store.Key{expired, valid} {
		got, _, err := e.h.Store.Lookup(e.ctx, k.Digest)
		if err != nil {
			e.Errorf("Lookup(key expiring %v): %v; expired keys must be returned, not hidden", k.ExpiresAt, err)
			continue
		}
		if !got.ExpiresAt.Equal(k.ExpiresAt) {
			e.Errorf("ExpiresAt = %v, want %v", got.ExpiresAt, k.ExpiresAt)
		}
	}
}

// testLookupKeyExpiresWhileStored checks, with a controlled clock, that a
// key is still returned, ExpiresAt intact, once its expiry has passed.
func testLookupKeyExpiresWhileStored(e *env) {
	e.needAdvance()
	now := e.h.Now()
	a := store.Account{ID: e.newID()}
	k := e.newKey(a.ID)
	k.ExpiresAt = now.Truncate(time.Second).Add(time.Hour)
	e.seed(a, k)
	if _, _, err := e.h.Store.Lookup(e.ctx, k.Digest); err != nil {
		e.Fatalf("Lookup before expiry: %v", err)
	}
	e.h.Advance(k.ExpiresAt.Sub(now))
	got, _, err := e.h.Store.Lookup(e.ctx, k.Digest)
	if err != nil {
		e.Fatalf("Lookup at expiry: %v; expired keys must be returned, not hidden", err)
	}
	if !got.ExpiresAt.Equal(k.ExpiresAt) {
		e.Errorf("at ExpiresAt: ExpiresAt = %v, want %v", got.ExpiresAt, k.ExpiresAt)
	}
}
