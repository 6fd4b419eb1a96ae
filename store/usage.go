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
	// Revision is 0 for an operation's first report. A refund after that
	// report makes a correction: Revision is one more than the reported
	// revision, Value the new net (possibly 0), and ReportedAt when the
	// report it replaces was acknowledged.
	Revision int
	// ReportedAt is, for a correction, when the report it replaces was
	// acknowledged; zero otherwise.
	ReportedAt time.Time
}

// UsageOutbox holds usage until a reporter acknowledges it: what a crash
// or a provider's outage must not lose. A reporter reads a batch with
// Pending, sends it, and acknowledges what the provider accepted with Ack;
// a usage read but never acknowledged comes back from a later Pending.
type UsageOutbox interface {
	// Pending returns up to limit usages not yet acknowledged, oldest
	// first.
	Pending(ctx context.Context, limit int) ([]Usage, error)
	// Ack records that usages were reported (a correction: that the
	// report it replaces was withdrawn and its value reported); Pending
	// never returns them again, unless a refund corrects them.
	Ack(ctx context.Context, usages []Usage) error
}
