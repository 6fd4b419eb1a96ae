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
// Optional capabilities are separate interfaces ([Refunder], [Buckets],
// [BucketSpender]) that callers discover with a type assertion, the way
// net/http discovers [net/http.Flusher].
type Store interface {
	// Lookup resolves the digest of a raw key to the key and its account,
	// equal to what was stored. Revoked and expired keys are returned like
	// any other, so the caller can say why it refuses them. An unknown key
	// yields an error wrapping [ErrNotFound]; a back-end failure yields any
	// other error, which the caller treats as the store being unavailable.
	Lookup(ctx context.Context, digest Digest) (Key, Account, error)

	// Spend atomically applies any due periodic refill (see [Refill]) and
	// then, if the balance covers cost, subtracts it. A refused spend
	// changes nothing but the refill. A cost of zero always succeeds; a
	// negative cost yields an error wrapping [ErrInvalidAmount]; an unknown
	// account yields an error wrapping [ErrNotFound].
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

// Refunder is implemented by stores that can give credits back, for example
// after the handler a charge paid for failed.
type Refunder interface {
	// Refund adds amount (which must be positive) to the account's balance
	// and returns the new balance.
	Refund(ctx context.Context, accountID string, amount int64) (balance int64, err error)
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
