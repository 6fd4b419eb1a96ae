package store

import (
	"context"
	"time"
)

// Operation describes one movement of credits for a store that keeps a
// [Ledger]: the go402 middlewares attach one to the context of every spend
// and refund they make on such a store, and the store records it beside the
// amount. A store retrying or cancelling an operation uses its ID, so that
// the same operation never moves credits twice.
type Operation struct {
	ID        string // unique per operation; a refund carries the ID of its spend
	Route     string // the route pattern, such as "GET /v1/reports", if known
	KeyPrefix string // the display prefix of the caller's key, never the key
}

// operationKey is the context key of an *Operation.
type operationKey struct{}

// WithOperation returns a copy of ctx that carries op to the store.
func WithOperation(ctx context.Context, op Operation) context.Context {
	return context.WithValue(ctx, operationKey{}, op)
}

// OperationFrom returns the operation ctx carries, if any.
func OperationFrom(ctx context.Context) (Operation, bool) {
	op, ok := ctx.Value(operationKey{}).(Operation)
	return op, ok
}

// Ledger is implemented by stores that record every movement of credits —
// debit, refund, top-up, refill and adjustment — in an append-only ledger,
// from which their balances can be re-derived.
type Ledger interface {
	// Entries returns an account's entries with Time in [q.From, q.To)
	// (zero bounds are open) and Seq after q.After, oldest first, at
	// most q.Limit (a store's default if ≤ 0, capped by the store).
	// Pass the last Seq returned as q.After for the next page.
	Entries(ctx context.Context, accountID string, q LedgerQuery) ([]LedgerEntry, error)
}

// LedgerQuery selects ledger entries; see [Ledger].
type LedgerQuery struct {
	From, To time.Time // Time ≥ From and < To; zero: unbounded
	After    int64     // entries with Seq > After
	Limit    int       // at most this many; ≤ 0: the store's default
}

// LedgerEntry is one movement of credits.
type LedgerEntry struct {
	Seq       int64     `json:"seq"`  // increases with every entry of the store
	Time      time.Time `json:"time"` // when the movement was made
	AccountID string    `json:"account_id"`
	// Kind is "debit", "refund", "topup", "refill" or "adjust".
	Kind        string `json:"kind"`
	Amount      int64  `json:"amount"`  // signed: negative for a debit
	Balance     int64  `json:"balance"` // the account's balance after it
	OperationID string `json:"operation_id"`
	Route       string `json:"route,omitempty"`
	KeyPrefix   string `json:"key_prefix,omitempty"`
}
