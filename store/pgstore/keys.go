package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/go402/go402/internal/keyprefix"
	"github.com/go402/go402/store"
	"github.com/jackc/pgx/v5"
)

// Accounts implements [store.Admin]: accounts in order of ID, with any due
// refill shown (not recorded), at most limit (default 100, at most 1000).
func (s *Store) Accounts(ctx context.Context, after string, limit int) ([]store.Account, error) {
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, s.sql.accounts, after, limit)
	if err != nil {
		return nil, wrap("accounts", err)
	}
	var out []store.Account
	var ar accountRow
	_, err = pgx.ForEachRow(rows, ar.dest(), func() error {
		a, err := ar.account()
		out = append(out, a)
		return err
	})
	if err != nil {
		return nil, wrap("accounts", err)
	}
	return out, nil
}

// CreateKey implements [store.Admin]: a new key from [store.GenerateKey]
// for an existing account, CreatedAt by the Store's clock (whole
// microseconds, as stored).
func (s *Store) CreateKey(ctx context.Context, accountID, prefix string) (string, store.Key, error) {
	raw, err := store.GenerateKey(prefix)
	if err != nil {
		return "", store.Key{}, err
	}
	k := store.NewKey(raw, accountID)
	k.CreatedAt = s.now().Truncate(time.Microsecond)
	if err := s.PutKey(ctx, k); err != nil {
		return "", store.Key{}, err
	}
	return raw, k, nil
}

// PutKey implements [store.Admin]: it stores k, replacing any key with its
// digest, which must not be zero; its account must exist (else the error
// wraps [store.ErrNotFound]). A Prefix longer than a display prefix is cut
// to one. A revoked key stays revoked: the row is replaced in one
// statement that keeps its revocation.
func (s *Store) PutKey(ctx context.Context, k store.Key) error {
	switch {
	case k.Digest == store.Digest{}:
		return fmt.Errorf("pgstore: put key: digest must not be zero")
	case k.AccountID == "" || len(k.AccountID) > maxIDLength:
		return fmt.Errorf("pgstore: put key: account ID must be 1 to %d bytes", maxIDLength)
	}
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, s.sql.putKey, k.Digest[:], keyprefix.Clamp(k.Prefix), k.AccountID, k.Revoked,
		timeOrNil(k.ExpiresAt), timeOrNil(k.CreatedAt), timeOrNil(k.LastUsedAt))
	return wrap("put key", err)
}

// Keys implements [store.Admin]: the account's keys in order of CreatedAt,
// then Prefix; an unknown account's error wraps [store.ErrNotFound].
func (s *Store) Keys(ctx context.Context, accountID string) ([]store.Key, error) {
	if _, err := s.Account(ctx, accountID); err != nil {
		return nil, err
	}
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, s.sql.keys, accountID)
	if err != nil {
		return nil, wrap("keys", err)
	}
	var out []store.Key
	var kr keyRow
	_, err = pgx.ForEachRow(rows, kr.dest(), func() error {
		out = append(out, kr.key())
		return nil
	})
	if err != nil {
		return nil, wrap("keys", err)
	}
	return out, nil
}

// RevokeKey implements [store.Admin]: the key stops authenticating here at
// once and in every other Store on the database as soon as the
// notification reaches it. Revoking an unknown key yields an error
// wrapping [store.ErrNotFound].
func (s *Store) RevokeKey(ctx context.Context, digest store.Digest) error {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, s.sql.revoke, digest[:])
	if err != nil {
		return wrap("revoke key", err)
	}
	s.cache.invalidateKey(digest)
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pgstore: revoke key: %w", store.ErrNotFound)
	}
	return nil
}

// TouchKeys implements [store.Admin] in one statement.
func (s *Store) TouchKeys(ctx context.Context, uses map[store.Digest]time.Time) error {
	if len(uses) == 0 {
		return nil
	}
	digests := make([][]byte, 0, len(uses))
	times := make([]time.Time, 0, len(uses))
	for d, t := range uses {
		digests = append(digests, d[:])
		times = append(times, t)
	}
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, s.sql.touch, digests, times)
	return wrap("touch keys", err)
}

// timeOrNil returns nil for the zero time, else t.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
