package store

import (
	"context"
	"time"
)

// Usage is one operation's credits to bill to a payment provider: a debit
// less its refunds.
type Usage struct {
	// ID is the operation ID: the identifier that makes a provider count
	// the usage once however often it is sent.
	ID string
	// AccountID is the account debited.
	AccountID string
	// Value is the credits used, the debit less its refunds; positive.
	Value int64
	// Time is when the debit was made.
	Time time.Time
	// Seq is the ledger position of the debit, when the outbox has one.
	Seq int64
}

// UsageOutbox holds usage until a reporter acknowledges it: what a crash
// or a provider's outage must not lose. A reporter reads a batch with
// Pending, sends it, and acknowledges what the provider accepted with Ack;
// a usage read but never acknowledged comes back from a later Pending.
type UsageOutbox interface {
	// Pending returns up to limit usages not yet acknowledged, oldest
	// first.
	Pending(ctx context.Context, limit int) ([]Usage, error)
	// Ack records that usages were reported; Pending never returns them
	// again.
	Ack(ctx context.Context, usages []Usage) error
}
