package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Store is what the go402 middlewares need from a back end: resolve a key and
// spend credits atomically, safe for concurrent use. Optional capabilities
// ([Refunder], [Buckets], [BucketSpender]) are found by type assertion.
type Store interface {
	// Lookup resolves a digest to the key and its account, equal to what
	// was stored, revoked and expired keys included so that the caller can
	// say why it refuses them. An unknown key yields an error wrapping
	// [ErrNotFound]; any other error means the store is unavailable.
	Lookup(ctx context.Context, digest Digest) (Key, Account, error)

	// Spend atomically applies any due [Refill], then subtracts cost if the
	// balance covers it; a refused spend changes nothing else. A cost of
	// zero always succeeds; a negative cost yields an error wrapping
	// [ErrInvalidAmount], an unknown account one wrapping [ErrNotFound].
	Spend(ctx context.Context, accountID string, cost int64) (SpendResult, error)
}

// SpendResult is the outcome of [Store.Spend].
type SpendResult struct {
	OK         bool      // the cost was debited
	Balance    int64     // after the debit, or the balance too small for it
	NextRefill time.Time // the next top-up; zero if the account has no Refill
	// Cap is the cap's state and the thresholds this spend crossed, set for
	// an account with a [SpendCap] or [Threshold]s by the stores that keep
	// them ([SpendCapper]); a spend of zero may leave it nil.
	Cap *CapResult
}

// Crossed returns the thresholds the spend crossed, if any; see [CapResult].
func (r SpendResult) Crossed() []Threshold {
	if r.Cap == nil {
		return nil
	}
	return r.Cap.Crossed
}

// Refunder is implemented by stores that can give credits back, for example
// when the handler a charge paid for failed.
type Refunder interface {
	// Refund adds amount, which must be positive, to the balance it returns.
	Refund(ctx context.Context, accountID string, amount int64) (balance int64, err error)
}

// Errors that stores wrap, for callers to test with [errors.Is].
var (
	// ErrNotFound means the key or account does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrInvalidAmount means a cost, refund or top-up was out of range.
	ErrInvalidAmount = errors.New("store: invalid amount")
	// ErrExists means an account to be created exists already.
	ErrExists = errors.New("store: exists")
)

// errorf formats an error prefixed with "store: ".
func errorf(format string, args ...any) error {
	return fmt.Errorf("store: "+format, args...)
}
