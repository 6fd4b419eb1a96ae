package otel402_test

import (
	"context"
	"errors"
	"time"

	"github.com/go402/go402/store"
)

// fake is a store that records each call, the method with the value of
// ctxKey in its context and its arguments, and answers every call with
// the values below and err. fakes embeds *fake with the method sets of
// each capability of a set.
type fake struct {
	calls [][]any
	err   error
}

// ctxKey marks the context of a call, to check that it reaches the store.
type ctxKey struct{}

// errFake is the failure of a fake store call.
var errFake = errors.New("fake store down")

// What a fake store answers.
var (
	fakeTime    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fakeKey     = store.Key{Digest: store.DigestOf("sk_test_fake"), Prefix: "sk_test_fake", AccountID: "acct_1"}
	fakeAccount = store.Account{ID: "acct_1", Plan: "pro", Balance: 40}
	fakeSpent   = store.SpendResult{OK: true, Balance: 37}
	fakeBucket  = store.Bucket{Account: "acct_1", Key: "default", Rate: 1, Burst: 5, Cost: 1}
	fakeTaken   = store.BucketResult{OK: true, Remaining: 4, Full: time.Second}
	fakeHold    = store.Hold{AccountID: "acct_1", ID: 9, Amount: 3, Expires: fakeTime}
	fakeEntries = []store.LedgerEntry{{Seq: 1, Time: fakeTime, AccountID: "acct_1", Kind: "debit", Amount: -3, Balance: 37}}
)

func (f *fake) called(ctx context.Context, method string, args ...any) {
	f.calls = append(f.calls, append([]any{method, ctx.Value(ctxKey{})}, args...))
}

func (f *fake) Lookup(ctx context.Context, d store.Digest) (store.Key, store.Account, error) {
	f.called(ctx, "Lookup", d)
	return fakeKey, fakeAccount, f.err
}

func (f *fake) Spend(ctx context.Context, id string, cost int64) (store.SpendResult, error) {
	f.called(ctx, "Spend", id, cost)
	return fakeSpent, f.err
}

type fakeRefunds struct{ f *fake }

func (x *fakeRefunds) Refund(ctx context.Context, id string, amount int64) (int64, error) {
	x.f.called(ctx, "Refund", id, amount)
	return 43, x.f.err
}

type fakeBucketTakes struct{ f *fake }

func (x *fakeBucketTakes) TakeTokens(ctx context.Context, b store.Bucket) (store.BucketResult, error) {
	x.f.called(ctx, "TakeTokens", b)
	return fakeTaken, x.f.err
}

type fakeBucketSpends struct{ f *fake }

func (x *fakeBucketSpends) SpendWithTokens(ctx context.Context, id string, cost int64, b store.Bucket) (store.SpendResult, store.BucketResult, error) {
	x.f.called(ctx, "SpendWithTokens", id, cost, b)
	return fakeSpent, fakeTaken, x.f.err
}

type fakeLedgerEntries struct{ f *fake }

func (x *fakeLedgerEntries) Entries(ctx context.Context, id string, q store.LedgerQuery) ([]store.LedgerEntry, error) {
	x.f.called(ctx, "Entries", id, q)
	return fakeEntries, x.f.err
}

type fakeHolds struct{ f *fake }

func (x *fakeHolds) Hold(ctx context.Context, id string, amount int64, lease time.Duration) (store.Hold, store.SpendResult, error) {
	x.f.called(ctx, "Hold", id, amount, lease)
	return fakeHold, fakeSpent, x.f.err
}

func (x *fakeHolds) Settle(ctx context.Context, h store.Hold, actual int64) (int64, error) {
	x.f.called(ctx, "Settle", h, actual)
	return 38, x.f.err
}

type fakeBucketHolds struct{ f *fake }

func (x *fakeBucketHolds) HoldWithTokens(ctx context.Context, id string, amount int64, lease time.Duration, b store.Bucket) (store.Hold, store.SpendResult, store.BucketResult, error) {
	x.f.called(ctx, "HoldWithTokens", id, amount, lease, b)
	return fakeHold, fakeSpent, fakeTaken, x.f.err
}

type fakeSlotLeases struct{ f *fake }

func (x *fakeSlotLeases) AcquireSlot(ctx context.Context, key string, max int, lease time.Duration) (string, bool, error) {
	x.f.called(ctx, "AcquireSlot", key, max, lease)
	return "slot_1", true, x.f.err
}

func (x *fakeSlotLeases) ReleaseSlot(ctx context.Context, key, slot string) error {
	x.f.called(ctx, "ReleaseSlot", key, slot)
	return x.f.err
}

type fakeSpendCaps struct{ f *fake }

func (x *fakeSpendCaps) KeepsSpendCaps() { x.f.called(context.Background(), "KeepsSpendCaps") }

type fakeAdmins struct{ f *fake }

func (x *fakeAdmins) Account(ctx context.Context, id string) (store.Account, error) {
	x.f.called(ctx, "Account", id)
	return fakeAccount, x.f.err
}

func (x *fakeAdmins) PutAccount(ctx context.Context, a store.Account) error {
	x.f.called(ctx, "PutAccount", a)
	return x.f.err
}

func (x *fakeAdmins) CreateAccount(ctx context.Context, a store.Account) error {
	x.f.called(ctx, "CreateAccount", a)
	return x.f.err
}

// UpdateAccount applies fn to fakeAccount and returns the result.
func (x *fakeAdmins) UpdateAccount(ctx context.Context, id string, fn func(*store.Account) error) (store.Account, error) {
	x.f.called(ctx, "UpdateAccount", id)
	a := fakeAccount
	if err := fn(&a); err != nil {
		return store.Account{}, err
	}
	return a, x.f.err
}

func (x *fakeAdmins) Accounts(ctx context.Context, after string, limit int) ([]store.Account, error) {
	x.f.called(ctx, "Accounts", after, limit)
	return []store.Account{fakeAccount}, x.f.err
}

func (x *fakeAdmins) TopUp(ctx context.Context, id string, amount int64) (int64, error) {
	x.f.called(ctx, "TopUp", id, amount)
	return 50, x.f.err
}

func (x *fakeAdmins) CreateKey(ctx context.Context, id, prefix string) (string, store.Key, error) {
	x.f.called(ctx, "CreateKey", id, prefix)
	return "sk_test_fake", fakeKey, x.f.err
}

func (x *fakeAdmins) PutKey(ctx context.Context, k store.Key) error {
	x.f.called(ctx, "PutKey", k)
	return x.f.err
}

func (x *fakeAdmins) Keys(ctx context.Context, id string) ([]store.Key, error) {
	x.f.called(ctx, "Keys", id)
	return []store.Key{fakeKey}, x.f.err
}

func (x *fakeAdmins) RevokeKey(ctx context.Context, d store.Digest) error {
	x.f.called(ctx, "RevokeKey", d)
	return x.f.err
}

func (x *fakeAdmins) TouchKeys(ctx context.Context, uses map[store.Digest]time.Time) error {
	x.f.called(ctx, "TouchKeys", uses)
	return x.f.err
}
