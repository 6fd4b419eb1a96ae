package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Store is what the go402 middlewares need from a back end: resolve a key and
// spend credits atomically. Implementations must be safe for concurrent use.
//
// Optional capabilities are separate interfaces ([SharedLookup],
// [Refunder], [Admin], [Buckets], [BucketSpender]) that callers discover
// with a type assertion, the way net/http discovers [net/http.Flusher].
type Store interface {
	// Lookup resolves the digest of a raw key to the key and its account.
	// Revoked and expired keys are returned like any other, so the caller can
	// say why it refuses them. An unknown key yields an error wrapping
	// [ErrNotFound]; a back-end failure yields any other error, which the
	// caller treats as the store being unavailable.
	Lookup(ctx context.Context, digest Digest) (Key, Account, error)

	// Spend atomically applies any due periodic refill (see
	// [Account.ApplyRefill]) and then, if the balance covers cost, subtracts
	// it. A refused spend changes nothing but the refill. A cost of zero
	// always succeeds; a negative cost yields an error wrapping
	// [ErrInvalidAmount]; an unknown account yields an error wrapping
	// [ErrNotFound].
	Spend(ctx context.Context, accountID string, cost int64) (SpendResult, error)
}

// SpendResult is the outcome of [Store.Spend].
type SpendResult struct {
	// OK reports whether the cost was debited.
	OK bool
	// Balance is the balance after the debit, or, when the spend was refused,
	// the balance that was too small.
	Balance int64
	// NextRefill is when the balance is next topped up, or the zero time if
	// the account has no periodic refill.
	NextRefill time.Time
}

// SharedLookup is implemented by stores that can resolve a key without
// copying their records, such as [Memory], [Callback] (its cached lookups)
// and the Redis store. paywall.Authenticate uses it instead of
// [Store.Lookup] when the store offers it, so that a request carries
// pointers to the key and the account rather than copies of them. A
// wrapper that changes what a store's Lookup returns must therefore not
// pass LookupShared through unchanged (embedding a store passes it through).
type SharedLookup interface {
	// LookupShared is [Store.Lookup] returning the store's own records of
	// the key and its account instead of copies. The store never modifies
	// a record it has handed out — it replaces it — and the caller must not
	// modify it either. The account's Balance field may be out of date:
	// balance is the balance Lookup would report in it (the current one,
	// with any refill due now applied, or a cached one for a store that
	// caches lookups). Errors are as for Lookup.
	LookupShared(ctx context.Context, digest Digest) (k *Key, a *Account, balance int64, err error)
}

// Refunder is implemented by stores that can give credits back, for example
// after the handler a charge paid for failed.
type Refunder interface {
	// Refund adds amount (which must be positive) to the account's balance
	// and returns the new balance.
	Refund(ctx context.Context, accountID string, amount int64) (balance int64, err error)
}

// Admin is implemented by stores that manage keys and accounts themselves,
// such as the memory store. Stores backed by the application's own database
// usually leave these operations to the application.
type Admin interface {
	// PutAccount creates or replaces an account. The store keeps its own copy.
	PutAccount(ctx context.Context, a Account) error
	// Account returns the account with the given ID, or an error wrapping
	// [ErrNotFound].
	Account(ctx context.Context, id string) (Account, error)
	// TopUp adds amount (which must be positive) to the account's balance and
	// returns the new balance.
	TopUp(ctx context.Context, accountID string, amount int64) (balance int64, err error)
	// CreateKey generates a random key with the given prefix (for example
	// "sk_live_") for an existing account, stores its digest, and returns the
	// raw key — the only time it is ever available — together with the
	// stored Key.
	CreateKey(ctx context.Context, accountID, prefix string) (raw string, k Key, err error)
	// PutKey stores a key whose raw form is known elsewhere (see [NewKey]),
	// replacing any key with the same digest. Its account must exist.
	PutKey(ctx context.Context, k Key) error
	// RevokeKey marks the key revoked. Revoking an unknown key yields an
	// error wrapping [ErrNotFound].
	RevokeKey(ctx context.Context, digest Digest) error
}

// AccountContext is implemented by a request's context that carries the
// Account that [Store.Lookup] or [SharedLookup] returned for the request's
// key — the context paywall.Authenticate gives a request does. A store may
// use it to reach its record of that account without a second lookup when
// it is asked to spend from the same account: [Memory] does, in Spend and
// SpendWithTokens. Stores must not rely on it: a context that a handler
// derived from the request's, for one, does not implement it.
type AccountContext interface {
	context.Context
	// LookedUpAccount returns the Account that the lookup returned for the
	// request, which the caller must not modify.
	LookedUpAccount() *Account
}

// Errors that stores wrap, for callers to test with [errors.Is].
var (
	// ErrNotFound means the key or account does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrInvalidAmount means a cost, refund or top-up was out of range.
	ErrInvalidAmount = errors.New("store: invalid amount")
)

// errorf formats an error prefixed with the package name.
func errorf(format string, args ...any) error {
	return fmt.Errorf("store: "+format, args...)
}
