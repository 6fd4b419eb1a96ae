package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/go402/go402/store"
)

// adminRaceTests check the admin capability's writes that race: creating
// an account once, and revocation being final.
var adminRaceTests = []subtest{
	{"CreateAccount", testAdminCreateAccount},
	{"CreateAccountOnce", testAdminCreateAccountOnce},
	{"RevokeFinal", testAdminRevokeFinal},
	{"RotateRevokeRace", testAdminRotateRevokeRace},
}

// testAdminCreateAccount checks that CreateAccount stores a new account,
// refuses one whose ID exists with ErrExists and leaves it unchanged, and
// refuses an invalid account.
func testAdminCreateAccount(e *env) {
	ad := capability[store.Admin](e)
	a := store.Account{ID: e.newID(), Plan: "pro", Balance: 70, Features: []string{"a"},
		Metadata: map[string]string{"k": "v"}}
	if err := ad.CreateAccount(e.ctx, a); err != nil {
		e.Fatalf("CreateAccount: %v", err)
	}
	e.spend(a.ID, 20)
	again := store.Account{ID: a.ID, Plan: "free", Balance: 5}
	err := ad.CreateAccount(e.ctx, again)
	e.wantErr("CreateAccount(existing)", err, store.ErrExists)
	want := a
	want.Balance = 50
	if got := e.adminRead(ad, a.ID); !reflect.DeepEqual(normalAccount(got), normalAccount(want)) {
		e.Errorf("account after CreateAccount of an existing one\n got %+v\nwant %+v", normalAccount(got), normalAccount(want))
	}
	if err := ad.CreateAccount(e.ctx, store.Account{}); err == nil {
		e.Errorf("CreateAccount(account without ID) succeeded")
	}
}

// testAdminCreateAccountOnce checks that of 200 calls creating the same
// account at once, with different balances, exactly one succeeds, the
// others fail with ErrExists, and the account stored is the winner's.
func testAdminCreateAccountOnce(e *env) {
	const workers = 200
	ad := capability[store.Admin](e)
	id := e.newID()
	var wins, winner atomic.Int64
	e.concurrently("concurrent CreateAccount", workers, func(i int) error {
		err := ad.CreateAccount(e.ctx, store.Account{ID: id, Plan: "free", Balance: int64(1000 + i)})
		switch {
		case err == nil:
			wins.Add(1)
			winner.Store(int64(1000 + i))
			return nil
		case errors.Is(err, store.ErrExists):
			return nil
		default:
			return err
		}
	})
	if n := wins.Load(); n != 1 {
		e.Fatalf("%d of %d concurrent CreateAccount calls of one ID succeeded, want exactly 1", n, workers)
	}
	e.wantBalance(id, winner.Load())
}

// adminPutKey stores k, failing the subtest if that fails.
func (e *env) adminPutKey(ad store.Admin, k store.Key) {
	e.Helper()
	if err := ad.PutKey(e.ctx, k); err != nil {
		e.Fatalf("PutKey: %v", err)
	}
}

// putKeyErr stores k, an error if that fails.
func putKeyErr(e *env, ad store.Admin, k store.Key) error {
	if err := ad.PutKey(e.ctx, k); err != nil {
		return fmt.Errorf("PutKey: %w", err)
	}
	return nil
}

// wantRevoked checks that k is revoked, as Keys lists it and Lookup finds
// it (or fails to).
func (e *env) wantRevoked(what string, ad store.Admin, k store.Key) {
	e.Helper()
	if got, ok := e.adminKeys(ad, k.AccountID)[k.Digest]; !ok || !got.Revoked {
		e.Errorf("%s: Keys listed the key as %+v (listed %v), want it revoked", what, got, ok)
	}
	got, _, err := e.h.Store.Lookup(e.ctx, k.Digest)
	if err == nil && !got.Revoked {
		e.Errorf("%s: Lookup found the key usable (not revoked)", what)
	}
}

// testAdminRevokeFinal checks that a revoked key stays revoked when put
// again, after the revocation or racing it.
func testAdminRevokeFinal(e *env) {
	const workers = 100
	ad := capability[store.Admin](e)
	a := e.adminAccount(ad, 1)
	k := e.newKey(a.ID)
	e.adminPutKey(ad, k)
	if err := ad.RevokeKey(e.ctx, k.Digest); err != nil {
		e.Fatalf("RevokeKey: %v", err)
	}
	if err := ad.PutKey(e.ctx, k); err != nil {
		e.Fatalf("PutKey(revoked key, Revoked false): %v", err)
	}
	e.wantRevoked("PutKey after RevokeKey", ad, k)

	raced := e.newKey(a.ID)
	e.adminPutKey(ad, raced)
	e.concurrently("RevokeKey racing PutKey", workers, func(i int) error {
		if i == workers/2 {
			return ad.RevokeKey(e.ctx, raced.Digest)
		}
		put := raced
		put.ExpiresAt = e.now().Add(time.Duration(i+1) * time.Hour)
		return putKeyErr(e, ad, put)
	})
	e.wantRevoked("PutKey racing RevokeKey", ad, raced)
}

// testAdminRotateRevokeRace checks that rotating a key with an overlap (a
// new key, and the old one put again with an expiry) racing the old key's
// revocation never leaves the old key usable, and that every new key works.
func testAdminRotateRevokeRace(e *env) {
	const workers = 40
	ad := capability[store.Admin](e)
	a := e.adminAccount(ad, 1)
	old := e.newKey(a.ID)
	e.adminPutKey(ad, old)
	fresh := make([]store.Key, workers)
	e.concurrently("rotations racing RevokeKey", workers, func(i int) error {
		if i == 0 {
			return ad.RevokeKey(e.ctx, old.Digest)
		}
		_, k, err := ad.CreateKey(e.ctx, a.ID, "sk_storetest_")
		if err != nil {
			return fmt.Errorf("CreateKey: %w", err)
		}
		fresh[i] = k
		retired := old
		retired.ExpiresAt = e.now().Add(time.Hour)
		return putKeyErr(e, ad, retired)
	})
	e.wantRevoked("rotations racing RevokeKey", ad, old)
	for _, k := range fresh[1:] {
		if got, _ := e.lookup(k); got.Revoked {
			e.Errorf("a rotation's new key %s is revoked", k.Prefix)
		}
	}
}
