package otel402

import (
	"context"
	"time"

	"github.com/go402/go402/store"
)

//go:generate go run ./internal/wrapgen

// The wrapper of a store is one of the struct types of wrappers_gen.go,
// written by internal/wrapgen from its list of capabilities: it embeds
// core, the methods of a store.Store, and the method set below of each
// optional capability the store has, and of no other. Each method set
// reaches the store through the instrumented it holds; its methods have
// pointer receivers, so that only a wrapper's pointer, the store, has
// them, and the compiler makes one forwarding method per method and
// wrapper rather than two.

// refunds is the method set of a store.Refunder.
type refunds struct{ c *instrumented }

// Refund implements store.Refunder.
func (x *refunds) Refund(ctx context.Context, accountID string, amount int64) (int64, error) {
	start := x.c.m.now()
	bal, err := x.c.refunder.Refund(ctx, accountID, amount)
	x.c.done(ctx, opRefund, start, err)
	return bal, err
}

// bucketTakes is the method set of a store.Buckets.
type bucketTakes struct{ c *instrumented }

// TakeTokens implements store.Buckets.
func (x *bucketTakes) TakeTokens(ctx context.Context, b store.Bucket) (store.BucketResult, error) {
	start := x.c.m.now()
	res, err := x.c.buckets.TakeTokens(ctx, b)
	x.c.done(ctx, opTakeTokens, start, err)
	return res, err
}

// bucketSpends is the method set of a store.BucketSpender.
type bucketSpends struct{ c *instrumented }

// SpendWithTokens implements store.BucketSpender.
func (x *bucketSpends) SpendWithTokens(ctx context.Context, accountID string, cost int64, b store.Bucket) (store.SpendResult, store.BucketResult, error) {
	start := x.c.m.now()
	res, br, err := x.c.spender.SpendWithTokens(ctx, accountID, cost, b)
	x.c.done(ctx, opSpendWithTokens, start, err)
	return res, br, err
}

// ledgerEntries is the method set of a store.Ledger.
type ledgerEntries struct{ c *instrumented }

// Entries implements store.Ledger.
func (x *ledgerEntries) Entries(ctx context.Context, accountID string, q store.LedgerQuery) ([]store.LedgerEntry, error) {
	start := x.c.m.now()
	es, err := x.c.ledger.Entries(ctx, accountID, q)
	x.c.done(ctx, opEntries, start, err)
	return es, err
}

// admins is the method set of a store.Admin.
type admins struct{ c *instrumented }

// Account implements store.Admin.
func (x *admins) Account(ctx context.Context, id string) (store.Account, error) {
	start := x.c.m.now()
	a, err := x.c.admin.Account(ctx, id)
	x.c.done(ctx, opAccount, start, err)
	return a, err
}

// PutAccount implements store.Admin.
func (x *admins) PutAccount(ctx context.Context, a store.Account) error {
	start := x.c.m.now()
	err := x.c.admin.PutAccount(ctx, a)
	x.c.done(ctx, opPutAccount, start, err)
	return err
}

// CreateAccount implements store.Admin.
func (x *admins) CreateAccount(ctx context.Context, a store.Account) error {
	start := x.c.m.now()
	err := x.c.admin.CreateAccount(ctx, a)
	x.c.done(ctx, opCreateAccount, start, err)
	return err
}

// UpdateAccount implements store.Admin.
func (x *admins) UpdateAccount(ctx context.Context, id string, fn func(*store.Account) error) (store.Account, error) {
	start := x.c.m.now()
	a, err := x.c.admin.UpdateAccount(ctx, id, fn)
	x.c.done(ctx, opUpdateAccount, start, err)
	return a, err
}

// Accounts implements store.Admin.
func (x *admins) Accounts(ctx context.Context, after string, limit int) ([]store.Account, error) {
	start := x.c.m.now()
	as, err := x.c.admin.Accounts(ctx, after, limit)
	x.c.done(ctx, opAccounts, start, err)
	return as, err
}

// TopUp implements store.Admin.
func (x *admins) TopUp(ctx context.Context, accountID string, amount int64) (int64, error) {
	start := x.c.m.now()
	bal, err := x.c.admin.TopUp(ctx, accountID, amount)
	x.c.done(ctx, opTopUp, start, err)
	return bal, err
}

// CreateKey implements store.Admin.
func (x *admins) CreateKey(ctx context.Context, accountID, prefix string) (raw string, k store.Key, err error) {
	start := x.c.m.now()
	raw, k, err = x.c.admin.CreateKey(ctx, accountID, prefix)
	x.c.done(ctx, opCreateKey, start, err)
	return raw, k, err
}

// PutKey implements store.Admin.
func (x *admins) PutKey(ctx context.Context, k store.Key) error {
	start := x.c.m.now()
	err := x.c.admin.PutKey(ctx, k)
	x.c.done(ctx, opPutKey, start, err)
	return err
}

// Keys implements store.Admin.
func (x *admins) Keys(ctx context.Context, accountID string) ([]store.Key, error) {
	start := x.c.m.now()
	ks, err := x.c.admin.Keys(ctx, accountID)
	x.c.done(ctx, opKeys, start, err)
	return ks, err
}

// RevokeKey implements store.Admin.
func (x *admins) RevokeKey(ctx context.Context, digest store.Digest) error {
	start := x.c.m.now()
	err := x.c.admin.RevokeKey(ctx, digest)
	x.c.done(ctx, opRevokeKey, start, err)
	return err
}

// TouchKeys implements store.Admin.
func (x *admins) TouchKeys(ctx context.Context, uses map[store.Digest]time.Time) error {
	start := x.c.m.now()
	err := x.c.admin.TouchKeys(ctx, uses)
	x.c.done(ctx, opTouchKeys, start, err)
	return err
}

// holds is the method set of a store.Holder.
type holds struct{ c *instrumented }

// Hold implements store.Holder.
func (x *holds) Hold(ctx context.Context, accountID string, amount int64, lease time.Duration) (store.Hold, store.SpendResult, error) {
	start := x.c.m.now()
	h, res, err := x.c.holder.Hold(ctx, accountID, amount, lease)
	x.c.done(ctx, opHold, start, err)
	return h, res, err
}

// Settle implements store.Holder.
func (x *holds) Settle(ctx context.Context, h store.Hold, actual int64) (int64, error) {
	start := x.c.m.now()
	bal, err := x.c.holder.Settle(ctx, h, actual)
	x.c.done(ctx, opSettle, start, err)
	return bal, err
}

// bucketHolds is the method set of a store.BucketHolder.
type bucketHolds struct{ c *instrumented }

// HoldWithTokens implements store.BucketHolder.
func (x *bucketHolds) HoldWithTokens(ctx context.Context, accountID string, amount int64, lease time.Duration, b store.Bucket) (store.Hold, store.SpendResult, store.BucketResult, error) {
	start := x.c.m.now()
	h, res, br, err := x.c.bucketHolder.HoldWithTokens(ctx, accountID, amount, lease, b)
	x.c.done(ctx, opHoldWithTokens, start, err)
	return h, res, br, err
}

// slotLeases is the method set of a store.Slots.
type slotLeases struct{ c *instrumented }

// AcquireSlot implements store.Slots.
func (x *slotLeases) AcquireSlot(ctx context.Context, key string, max int, lease time.Duration) (string, bool, error) {
	start := x.c.m.now()
	slot, ok, err := x.c.slots.AcquireSlot(ctx, key, max, lease)
	x.c.done(ctx, opAcquireSlot, start, err)
	return slot, ok, err
}

// ReleaseSlot implements store.Slots.
func (x *slotLeases) ReleaseSlot(ctx context.Context, key, slot string) error {
	start := x.c.m.now()
	err := x.c.slots.ReleaseSlot(ctx, key, slot)
	x.c.done(ctx, opReleaseSlot, start, err)
	return err
}

// spendCaps is the method set of a store.SpendCapper.
type spendCaps struct{ c *instrumented }

// KeepsSpendCaps implements store.SpendCapper. A marker, not a store
// call, it is forwarded but not timed.
func (x *spendCaps) KeepsSpendCaps() { x.c.capper.KeepsSpendCaps() }
