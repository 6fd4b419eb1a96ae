package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go402/go402/store"
)

var adminTests = []subtest{
	{"AccountRoundTrip", testAdminAccountRoundTrip},
	{"AccountUnknown", testAdminAccountUnknown},
	{"UpdateAccountApplies", testAdminUpdateAccountApplies},
	{"UpdateAccountErrorChangesNothing", testAdminUpdateAccountError},
	{"UpdateAccountUnknown", testAdminUpdateAccountUnknown},
	{"UpdateAccountAtomic", testAdminUpdateAccountAtomic},
	{"AccountsPaginated", testAdminAccountsPaginated},
	{"TopUp", testAdminTopUp},
	{"CreateKey", testAdminCreateKey},
	{"KeysListsRevoked", testAdminKeysListsRevoked},
	{"RevokeUnknownKey", testAdminRevokeUnknownKey},
	{"TouchKeys", testAdminTouchKeys},
}

// adminAccount stores a new account through PutAccount and returns it.
func (e *env) adminAccount(ad store.Admin, balance int64) store.Account {
	e.Helper()
	a := store.Account{ID: e.newID(), Plan: "free", Balance: balance, Features: []string{"a"}}
	if err := ad.PutAccount(e.ctx, a); err != nil {
		e.Fatalf("PutAccount: %v", err)
	}
	return a
}

// adminRead calls Account, failing the test on error.
func (e *env) adminRead(ad store.Admin, id string) store.Account {
	e.Helper()
	a, err := ad.Account(e.ctx, id)
	if err != nil {
		e.Fatalf("Account(%q): %v", id, err)
	}
	return a
}

// adminKeys calls Keys and returns the keys by digest.
func (e *env) adminKeys(ad store.Admin, accountID string) map[store.Digest]store.Key {
	e.Helper()
	keys, err := ad.Keys(e.ctx, accountID)
	if err != nil {
		e.Fatalf("Keys(%q): %v", accountID, err)
	}
	m := make(map[store.Digest]store.Key, len(keys))
	for _, k := range keys {
		if k.AccountID != accountID {
			e.Errorf("Keys(%q) listed key %s of account %q", accountID, k.Prefix, k.AccountID)
		}
		m[k.Digest] = k
	}
	if len(m) != len(keys) {
		e.Errorf("Keys(%q) listed a key twice: %d keys, %d digests", accountID, len(keys), len(m))
	}
	return m
}

// testAdminAccountRoundTrip checks that Account returns what PutAccount
// stored, every field included, and the balance a spend left.
func testAdminAccountRoundTrip(e *env) {
	ad := capability[store.Admin](e)
	a, _ := e.seedFullKey()
	a.RefilledAt = time.Time{} // seeded through the harness: put it again through the store
	a.Refill = nil
	if err := ad.PutAccount(e.ctx, a); err != nil {
		e.Fatalf("PutAccount: %v", err)
	}
	if got := e.adminRead(ad, a.ID); !reflect.DeepEqual(normalAccount(got), normalAccount(a)) {
		e.Errorf("Account returned\n got %+v\nwant %+v", normalAccount(got), normalAccount(a))
	}
	e.spend(a.ID, 34)
	if got := e.adminRead(ad, a.ID).Balance; got != a.Balance-34 {
		e.Errorf("Account after Spend(34): balance %d, want %d", got, a.Balance-34)
	}
}

// testAdminAccountUnknown checks that Account of an account never stored
// is an error wrapping ErrNotFound.
func testAdminAccountUnknown(e *env) {
	ad := capability[store.Admin](e)
	_, err := ad.Account(e.ctx, e.newID())
	e.wantErr("Account(unknown)", err, store.ErrNotFound)
}

// testAdminUpdateAccountApplies checks that what fn changes, balance
// included, is returned and stored, and that fn sees the current account.
func testAdminUpdateAccountApplies(e *env) {
	ad := capability[store.Admin](e)
	a := e.adminAccount(ad, 100)
	e.spend(a.ID, 10)
	got, err := ad.UpdateAccount(e.ctx, a.ID, func(acc *store.Account) error {
		if acc.ID != a.ID || acc.Balance != 90 || acc.Plan != "free" {
			return fmt.Errorf("fn got %+v, want ID %q, balance 90, plan free", *acc, a.ID)
		}
		acc.Plan, acc.Status = "pro", store.StatusPastDue
		acc.Features = append(acc.Features, "b")
		acc.Balance += 5
		return nil
	})
	if err != nil {
		e.Fatalf("UpdateAccount: %v", err)
	}
	want := a
	want.Plan, want.Status, want.Features, want.Balance = "pro", store.StatusPastDue, []string{"a", "b"}, 95
	for what, acc := range map[string]store.Account{"UpdateAccount": got, "Account": e.adminRead(ad, a.ID)} {
		if !reflect.DeepEqual(normalAccount(acc), normalAccount(want)) {
			e.Errorf("%s returned\n got %+v\nwant %+v", what, normalAccount(acc), normalAccount(want))
		}
	}
	e.wantBalance(a.ID, 95)
}

// testAdminUpdateAccountError checks that an error from fn is returned and
// changes nothing, even though fn changed the account it was given.
func testAdminUpdateAccountError(e *env) {
	ad := capability[store.Admin](e)
	a := e.adminAccount(ad, 100)
	errStop := errors.New("storetest: stop")
	_, err := ad.UpdateAccount(e.ctx, a.ID, func(acc *store.Account) error {
		acc.Plan, acc.Balance = "changed", 1
		acc.Features[0] = "changed"
		return errStop
	})
	e.wantErr("UpdateAccount(fn fails)", err, errStop)
	if got := e.adminRead(ad, a.ID); !reflect.DeepEqual(normalAccount(got), normalAccount(a)) {
		e.Errorf("account after a failed UpdateAccount\n got %+v\nwant %+v", got, a)
	}
	e.wantBalance(a.ID, 100)
}

// testAdminUpdateAccountUnknown checks that updating an account never
// stored is an error wrapping ErrNotFound, without calling fn.
func testAdminUpdateAccountUnknown(e *env) {
	ad := capability[store.Admin](e)
	_, err := ad.UpdateAccount(e.ctx, e.newID(), func(*store.Account) error {
		e.Error("UpdateAccount called fn for an unknown account")
		return nil
	})
	e.wantErr("UpdateAccount(unknown)", err, store.ErrNotFound)
}

// testAdminUpdateAccountAtomic checks that updates adding to the balance,
// top-ups and spends running together lose nothing.
func testAdminUpdateAccountAtomic(e *env) {
	const workers = 200
	ad := capability[store.Admin](e)
	a := e.adminAccount(ad, workers)
	e.concurrently("concurrent UpdateAccount/TopUp/Spend", workers, func(i int) error {
		switch i % 4 {
		case 0:
			_, err := ad.UpdateAccount(e.ctx, a.ID, func(acc *store.Account) error {
				acc.Balance += 3
				acc.Metadata = map[string]string{"last": fmt.Sprint(i)}
				return nil
			})
			return err
		case 1:
			_, err := ad.TopUp(e.ctx, a.ID, 2)
			return err
		default:
			res, err := e.h.Store.Spend(e.ctx, a.ID, 1)
			if err == nil && !res.OK {
				return fmt.Errorf("Spend(1) refused with balance %d", res.Balance)
			}
			return err
		}
	})
	e.wantBalance(a.ID, workers+workers/4*3+workers/4*2-workers/2)
}

// testAdminAccountsPaginated checks that Accounts lists accounts in order
// of ID after the one given, a page at a time.
func testAdminAccountsPaginated(e *env) {
	ad := capability[store.Admin](e)
	base := e.newID()
	var ids []string
	for _, suffix := range []string{"-d", "-a", "-e", "-c", "-b"} {
		a := store.Account{ID: base + suffix, Plan: "free", Balance: int64(len(ids))}
		if err := ad.PutAccount(e.ctx, a); err != nil {
			e.Fatalf("PutAccount: %v", err)
		}
		ids = append(ids, a.ID)
	}
	slices.Sort(ids)
	if got := e.pageIDs(ad, base); !slices.Equal(got, ids) {
		e.Errorf("Accounts pages listed %q, want %q", got, ids)
	}
	if accts, err := ad.Accounts(e.ctx, base+"-a", 1); err != nil || len(accts) != 1 || accts[0].ID != base+"-b" {
		e.Errorf("Accounts(%q, 1) = %v, %v; want only %q", base+"-a", accts, err, base+"-b")
	} else if accts[0].Balance != 4 {
		e.Errorf("Accounts listed balance %d, want 4", accts[0].Balance)
	}
}

// pageIDs pages through Accounts two at a time from base, which sorts
// just before the IDs that start with it, and returns those IDs.
func (e *env) pageIDs(ad store.Admin, base string) []string {
	e.Helper()
	var got []string
	after := base
	for page := 0; page < 4; page++ {
		accts, err := ad.Accounts(e.ctx, after, 2)
		if err != nil {
			e.Fatalf("Accounts(%q, 2): %v", after, err)
		}
		if len(accts) > 2 {
			e.Fatalf("Accounts(%q, 2) returned %d accounts", after, len(accts))
		}
		for _, a := range accts {
			if a.ID <= after {
				e.Errorf("Accounts(%q) returned %q, not after it", after, a.ID)
			}
			if strings.HasPrefix(a.ID, base) {
				got = append(got, a.ID)
			}
			after = a.ID
		}
		if len(accts) < 2 || !strings.HasPrefix(after, base) {
			break
		}
	}
	return got
}

// testAdminTopUp checks that TopUp adds and returns the balance, refuses a
// non-positive amount and an unknown account.
func testAdminTopUp(e *env) {
	ad := capability[store.Admin](e)
	a := e.adminAccount(ad, 10)
	if b, err := ad.TopUp(e.ctx, a.ID, 15); err != nil || b != 25 {
		e.Errorf("TopUp(15) = %d, %v; want 25", b, err)
	}
	for _, amount := range []int64{0, -5} {
		_, err := ad.TopUp(e.ctx, a.ID, amount)
		e.wantErr("TopUp(non-positive)", err, store.ErrInvalidAmount)
	}
	_, err := ad.TopUp(e.ctx, e.newID(), 1)
	e.wantErr("TopUp(unknown account)", err, store.ErrNotFound)
	e.wantBalance(a.ID, 25)
}

// testAdminCreateKey checks that a created key authenticates as its
// account, is listed by Keys without the raw key, and that an unknown
// account gets none.
func testAdminCreateKey(e *env) {
	ad := capability[store.Admin](e)
	a := e.adminAccount(ad, 10)
	raw, k, err := ad.CreateKey(e.ctx, a.ID, "sk_test_")
	if err != nil {
		e.Fatalf("CreateKey: %v", err)
	}
	if k.Digest != store.DigestOf(raw) || k.AccountID != a.ID || !strings.HasPrefix(raw, "sk_test_") {
		e.Errorf("CreateKey returned key %+v for raw key with prefix %q", k, raw[:8])
	}
	if strings.Contains(k.Prefix, raw) || len(k.Prefix) >= len(raw) {
		e.Errorf("CreateKey's display prefix %q holds the whole key", k.Prefix)
	}
	gotK, gotA, err := e.h.Store.Lookup(e.ctx, store.DigestOf(raw))
	if err != nil || gotK.Digest != k.Digest || gotA.ID != a.ID || gotK.Revoked {
		e.Errorf("Lookup(created key) = %+v, account %q, %v", gotK, gotA.ID, err)
	}
	listed := e.adminKeys(ad, a.ID)
	if l, ok := listed[k.Digest]; !ok || len(listed) != 1 || l.Prefix != k.Prefix {
		e.Errorf("Keys after CreateKey = %+v, want only %+v", listed, k)
	}
	_, _, err = ad.CreateKey(e.ctx, e.newID(), "sk_test_")
	e.wantErr("CreateKey(unknown account)", err, store.ErrNotFound)
}

// testAdminKeysListsRevoked checks that Keys lists an account's keys,
// revoked and expired ones included, and no other account's.
func testAdminKeysListsRevoked(e *env) {
	ad := capability[store.Admin](e)
	a, other := e.adminAccount(ad, 1), e.adminAccount(ad, 1)
	live, revoked, expired, foreign := e.newKey(a.ID), e.newKey(a.ID), e.newKey(a.ID), e.newKey(other.ID)
	expired.ExpiresAt = e.now().Add(-time.Hour)
	for _, k := range []store.Key{live, revoked, expired, foreign} {
		if err := ad.PutKey(e.ctx, k); err != nil {
			e.Fatalf("PutKey: %v", err)
		}
	}
	if err := ad.RevokeKey(e.ctx, revoked.Digest); err != nil {
		e.Fatalf("RevokeKey: %v", err)
	}
	listed := e.adminKeys(ad, a.ID)
	if len(listed) != 3 {
		e.Errorf("Keys listed %d keys, want 3", len(listed))
	}
	for _, k := range []store.Key{live, revoked, expired} {
		got, ok := listed[k.Digest]
		if !ok {
			e.Errorf("Keys did not list key %s", k.Prefix)
			continue
		}
		if got.Revoked != (k.Digest == revoked.Digest) {
			e.Errorf("Keys listed key %s with Revoked %v", k.Prefix, got.Revoked)
		}
		if !got.ExpiresAt.Equal(k.ExpiresAt) {
			e.Errorf("Keys listed key %s expiring at %v, want %v", k.Prefix, got.ExpiresAt, k.ExpiresAt)
		}
	}
	if listed := e.adminKeys(ad, other.ID); len(listed) != 1 {
		e.Errorf("Keys of the other account listed %d keys, want 1", len(listed))
	}
}

// testAdminRevokeUnknownKey checks that revoking a key never stored is an
// error wrapping ErrNotFound.
func testAdminRevokeUnknownKey(e *env) {
	ad := capability[store.Admin](e)
	a := e.adminAccount(ad, 1)
	err := ad.RevokeKey(e.ctx, e.newKey(a.ID).Digest)
	e.wantErr("RevokeKey(unknown)", err, store.ErrNotFound)
}

// testAdminTouchKeys checks that TouchKeys keeps the later of the stored
// and the given time, never un-revokes a key, and ignores unknown keys.
func testAdminTouchKeys(e *env) {
	ad := capability[store.Admin](e)
	a := e.adminAccount(ad, 1)
	k1, k2 := e.newKey(a.ID), e.newKey(a.ID)
	for _, k := range []store.Key{k1, k2} {
		if err := ad.PutKey(e.ctx, k); err != nil {
			e.Fatalf("PutKey: %v", err)
		}
	}
	if err := ad.RevokeKey(e.ctx, k2.Digest); err != nil {
		e.Fatalf("RevokeKey: %v", err)
	}
	t0 := e.now().UTC()
	touch := func(uses map[store.Digest]time.Time) {
		e.Helper()
		if err := ad.TouchKeys(e.ctx, uses); err != nil {
			e.Fatalf("TouchKeys: %v", err)
		}
	}
	unknown := e.newKey(a.ID).Digest
	touch(map[store.Digest]time.Time{k1.Digest: t0, k2.Digest: t0.Add(time.Minute), unknown: t0})
	touch(map[store.Digest]time.Time{k1.Digest: t0.Add(-time.Hour), k2.Digest: t0.Add(2 * time.Minute)})
	touch(nil)
	listed := e.adminKeys(ad, a.ID)
	if len(listed) != 2 {
		e.Fatalf("Keys listed %d keys after TouchKeys, want 2 (an unknown digest must be ignored)", len(listed))
	}
	if got := listed[k1.Digest]; !got.LastUsedAt.Equal(t0) || got.Revoked {
		e.Errorf("key touched at t0 then earlier: LastUsedAt %v, Revoked %v; want %v, false", got.LastUsedAt, got.Revoked, t0)
	}
	if got := listed[k2.Digest]; !got.LastUsedAt.Equal(t0.Add(2*time.Minute)) || !got.Revoked {
		e.Errorf("revoked key touched twice: LastUsedAt %v, Revoked %v; want %v, true",
			got.LastUsedAt, got.Revoked, t0.Add(2*time.Minute))
	}
}
