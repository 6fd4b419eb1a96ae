package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go402/go402/store"
)

// Spend implements [store.Store] in one round trip: it locks the account's
// row, applies a due refill, debits cost if the balance covers it and
// appends the debit to the ledger, atomically, by the database's clock.
//
// The debit is recorded as the operation of ctx ([store.OperationFrom]), or
// a new one: repeating an operation returns its first outcome and debits
// nothing more. If the answer is lost (a timeout, a broken connection),
// Spend returns an error and the Store cancels the operation in the
// background, so that a request refused for it is never charged: a debit
// that committed meanwhile is refunded, one still to come is refused.
func (s *Store) Spend(ctx context.Context, accountID string, cost int64) (store.SpendResult, error) {
	if cost < 0 {
		return store.SpendResult{}, fmt.Errorf("pgstore: spend of %d: %w", cost, store.ErrInvalidAmount)
	}
	if err := checkAccountID("spend", accountID); err != nil {
		return store.SpendResult{}, err
	}
	op, _ := operation(ctx)
	qctx, cancel := s.bounded(ctx)
	defer cancel()
	var res store.SpendResult
	var next *time.Time
	var capJSON []byte
	err := s.pool.QueryRow(qctx, s.sql.spend, accountID, cost, op.ID, op.Route, op.KeyPrefix).
		Scan(&res.OK, &res.Balance, &next, &capJSON)
	if err != nil {
		if cost > 0 && answerLost(err) {
			s.cancels.add(accountID, op.ID)
		}
		return store.SpendResult{}, wrap("spend", err)
	}
	if next != nil {
		res.NextRefill = *next
	}
	if capJSON != nil {
		if res.Cap, err = decodeCap(capJSON); err != nil {
			return store.SpendResult{}, err
		}
	}
	return res, nil
}

// decodeCap decodes the cap column of the spend function.
func decodeCap(b []byte) (*store.CapResult, error) {
	var c struct {
		Limit   int64             `json:"limit"`
		Spent   int64             `json:"spent"`
		ResetAt *time.Time        `json:"reset_at"`
		Reached bool              `json:"reached"`
		Crossed []store.Threshold `json:"crossed"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("pgstore: spend: bad cap state: %w", err)
	}
	r := &store.CapResult{Limit: c.Limit, Spent: c.Spent, Reached: c.Reached}
	if c.ResetAt != nil {
		r.ResetAt = *c.ResetAt
	}
	if len(c.Crossed) > 0 {
		r.Crossed = c.Crossed
	}
	return r, nil
}

// KeepsSpendCaps implements [store.SpendCapper].
func (*Store) KeepsSpendCaps() {}

// Refund implements [store.Refunder]. With an operation in ctx it gives
// back, at most once, up to what that operation debited from the account
// (the middlewares refund a charge with the ID of its debit), and nothing
// if it debited nothing or was cancelled; without one, amount is credited.
// It applies any due refill first, and refuses an amount that would
// overflow the balance with an error wrapping [store.ErrInvalidAmount].
func (s *Store) Refund(ctx context.Context, accountID string, amount int64) (int64, error) {
	op, linked := operation(ctx)
	return s.credit(ctx, accountID, amount, creditOf{kind: "refund", op: op, ofDebit: linked})
}

// TopUp implements [store.Admin], adding a positive amount to the balance
// it returns. With an operation in ctx it is idempotent: a repeated
// operation adds nothing more and returns the balance as it is.
func (s *Store) TopUp(ctx context.Context, accountID string, amount int64) (int64, error) {
	op, _ := operation(ctx)
	return s.credit(ctx, accountID, amount, creditOf{kind: "topup", op: op})
}

// creditOf says what a credit is: its ledger kind, its operation, and
// whether it gives back that operation's debit.
type creditOf struct {
	kind    string
	op      store.Operation
	ofDebit bool
}

// credit adds amount to the balance as a ledger entry of c.kind.
func (s *Store) credit(ctx context.Context, accountID string, amount int64, c creditOf) (int64, error) {
	if amount <= 0 {
		return 0, fmt.Errorf("pgstore: %s of %d: %w", c.kind, amount, store.ErrInvalidAmount)
	}
	if err := checkAccountID(c.kind, accountID); err != nil {
		return 0, err
	}
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	var balance int64
	err := s.pool.QueryRow(ctx, s.sql.credit, accountID, amount, c.kind, c.op.ID, c.ofDebit, c.op.Route, c.op.KeyPrefix).
		Scan(&balance)
	if err != nil {
		return 0, wrap(c.kind, err)
	}
	return balance, nil
}
