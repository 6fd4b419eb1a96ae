package store

import (
	"context"
	"time"
)

// Holder is implemented by stores that can hold credits before the cost of a
// request is known, and settle the actual cost afterwards: the paywall's
// metered charges need it.
//
// Hold debits amount at once, as [Store.Spend] does, counting it against
// the account's [SpendCap] and [Threshold]s in a store that keeps them (a
// refused hold changes nothing), and records the hold with a lease. Settle
// debits the actual cost — at most what was held — by giving the rest
// back, and ends the hold. A hold not settled before its lease ends (its
// process died, say) is released by the store: every credit of it is given
// back, no later than the next spend or hold on the account or read of it,
// so a crashed holder never keeps a customer's credits. Settling a hold
// that was released or settled yields an error wrapping [ErrNotFound], and
// debits nothing.
type Holder interface {
	// Hold holds amount (≥ 0) for lease (> 0); the Hold is zero if the
	// balance did not cover it (res.OK false).
	Hold(ctx context.Context, accountID string, amount int64, lease time.Duration) (Hold, SpendResult, error)
	// Settle debits actual, 0 ≤ actual ≤ h.Amount, releases the rest and
	// returns the balance after it. It ignores ctx's cancellation and
	// deadline (a settlement is not lost because a client hung up), not
	// its values, and bounds its own time.
	Settle(ctx context.Context, h Hold, actual int64) (balance int64, err error)
}

// Hold is credits held from an account until settled or until Expires.
type Hold struct {
	AccountID string
	ID        int64 // unique among the account's holds
	Amount    int64
	Expires   time.Time // when the store releases it unless settled
}

// BucketHolder is implemented by stores that can take tokens from a bucket
// and hold credits in one atomic operation (one round trip), taking
// nothing if either refuses. The paywall uses it for a metered charge with
// a limit, as it uses [BucketSpender] for a fixed one.
type BucketHolder interface {
	// HoldWithTokens takes b.Cost tokens from the bucket b and holds
	// amount credits for lease as [Holder.Hold] does; the hold is settled
	// with [Holder.Settle]. Its arguments, errors and results follow
	// [BucketSpender.SpendWithTokens]: b.Account must be accountID; if the
	// BucketResult's OK is false the bucket refused (429; nothing held),
	// else if the SpendResult's OK is false the balance refused (402; no
	// tokens taken); else both were taken, and the Hold is not zero.
	HoldWithTokens(ctx context.Context, accountID string, amount int64, lease time.Duration, b Bucket) (Hold, SpendResult, BucketResult, error)
}
