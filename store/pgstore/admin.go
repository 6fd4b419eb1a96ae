package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go402/go402/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Limits of [Store.Accounts] and [Store.Entries].
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// Account implements [store.Admin]: the account, with any refill due now
// applied and recorded in the ledger.
func (s *Store) Account(ctx context.Context, id string) (store.Account, error) {
	if err := checkAccountID("account", id); err != nil {
		return store.Account{}, err
	}
	var a store.Account
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		a, err = s.lockAccount(ctx, tx, id)
		return err
	})
	return a, err
}

// PutAccount implements [store.Admin]: it creates or replaces the account,
// every field. A change of its balance (the whole balance of a new
// account) is recorded in the ledger as an "adjust" entry, so that the
// balance stays the sum of the account's entries.
func (s *Store) PutAccount(ctx context.Context, a store.Account) error {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	return s.putAccount(ctx, s.pool, a)
}

// UpdateAccount implements [store.Admin]: fn gets the account, with any
// refill due applied, under its row lock, so that no spend is lost; the
// result is stored as by [Store.PutAccount]. fn must not change the ID.
func (s *Store) UpdateAccount(ctx context.Context, id string, fn func(*store.Account) error) (store.Account, error) {
	if err := checkAccountID("update account", id); err != nil {
		return store.Account{}, err
	}
	var a store.Account
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		if a, err = s.lockAccount(ctx, tx, id); err != nil {
			return err
		}
		if err := fn(&a); err != nil {
			return err
		}
		if a.ID != id {
			return errors.New("pgstore: UpdateAccount: the account ID must not change")
		}
		return s.putAccount(ctx, tx, a)
	})
	if err != nil {
		return store.Account{}, err
	}
	return a, nil
}

// querier is what pools and transactions have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// putAccount validates and writes a.
func (s *Store) putAccount(ctx context.Context, q querier, a store.Account) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if a.Refill != nil && a.Refill.Every%time.Microsecond != 0 {
		return fmt.Errorf("pgstore: refill period must be a whole number of microseconds, got %v", a.Refill.Every)
	}
	info := a
	info.ID, info.Balance, info.Refill, info.RefilledAt = "", 0, nil, time.Time{}
	b, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("pgstore: put account: %w", err)
	}
	var amount, every *int64
	var anchor *time.Time
	if r := a.Refill; r != nil {
		e := int64(r.Every / time.Microsecond)
		amount, every, anchor = &r.Amount, &e, &r.Anchor
	}
	_, err = q.Exec(ctx, s.sql.putAccount, a.ID, a.Balance, amount, every, anchor, timeOrNil(a.RefilledAt), b,
		"adjust:"+randomID())
	return wrap("put account", err)
}

// lockAccount locks account id in tx, applies its due refill and reads it.
func (s *Store) lockAccount(ctx context.Context, tx pgx.Tx, id string) (store.Account, error) {
	if _, err := tx.Exec(ctx, s.sql.lockAccount, id); err != nil {
		return store.Account{}, wrap("account", err)
	}
	var ar accountRow
	if err := tx.QueryRow(ctx, s.sql.account, id).Scan(ar.dest()...); err != nil {
		return store.Account{}, wrap("account", err)
	}
	return ar.account()
}

// inTx runs fn in a transaction, with a context bounded by the Store's
// timeout; fn's errors come back as they are, others wrapped.
func (s *Store) inTx(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	var fnErr error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		fnErr = fn(ctx, tx)
		return fnErr
	})
	if err != nil && fnErr == nil {
		return wrap("transaction", err)
	}
	return err
}
