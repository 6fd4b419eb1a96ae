package pgstore

import (
	"context"

	"github.com/go402/go402/store"
	"github.com/jackc/pgx/v5"
)

// Entries implements [store.Ledger]: the account's ledger entries with
// Time in [q.From, q.To) and Seq after q.After, oldest first, at most
// q.Limit (default 100, at most 1000). An account's entries are numbered
// in the order they committed, so paging by Seq misses none.
func (s *Store) Entries(ctx context.Context, accountID string, q store.LedgerQuery) ([]store.LedgerEntry, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, s.sql.entries, accountID, q.After, timeOrNil(q.From), timeOrNil(q.To), limit)
	if err != nil {
		return nil, wrap("ledger", err)
	}
	var out []store.LedgerEntry
	var e store.LedgerEntry
	_, err = pgx.ForEachRow(rows, []any{&e.Seq, &e.Time, &e.AccountID, &e.Kind, &e.Amount, &e.Balance,
		&e.OperationID, &e.Route, &e.KeyPrefix}, func() error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, wrap("ledger", err)
	}
	return out, nil
}
