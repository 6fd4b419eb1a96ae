package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go402/go402/store"
	"github.com/jackc/pgx/v5"
)

// Lookup implements [store.Store]: the key and its account, with any refill
// due applied to the Balance shown, from the cache of this process if it is
// there (no round trip), else in one query. See [Options.LookupTTL] for how
// long a change can take to be seen.
func (s *Store) Lookup(ctx context.Context, digest store.Digest) (store.Key, store.Account, error) {
	now := s.now()
	if e, ok := s.cache.get(digest, now); ok {
		if !e.found {
			return store.Key{}, store.Account{}, fmt.Errorf("pgstore: lookup: %w", store.ErrNotFound)
		}
		return e.key, e.account, nil
	}
	gen := s.cache.generation()
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	k, a, err := scanKeyAccount(s.pool.QueryRow(ctx, s.sql.lookup, digest[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		s.cache.put(digest, cacheEntry{}, gen, now)
		return store.Key{}, store.Account{}, fmt.Errorf("pgstore: lookup: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Key{}, store.Account{}, wrap("lookup", err)
	}
	s.cache.put(digest, cacheEntry{key: k, account: a, found: true}, gen, now)
	return k, a, nil
}

// row is what pgx.Row and pgx.Rows have in common.
type row interface{ Scan(dest ...any) error }

// keyRow holds a key's columns (keyColumns) as scanned.
type keyRow struct {
	digest                     []byte
	prefix, accountID          string
	revoked                    bool
	expires, created, lastUsed *time.Time
}

func (r *keyRow) dest() []any {
	return []any{&r.digest, &r.prefix, &r.accountID, &r.revoked, &r.expires, &r.created, &r.lastUsed}
}

func (r *keyRow) key() store.Key {
	k := store.Key{Prefix: r.prefix, AccountID: r.accountID, Revoked: r.revoked,
		ExpiresAt: deref(r.expires), CreatedAt: deref(r.created), LastUsedAt: deref(r.lastUsed)}
	copy(k.Digest[:], r.digest)
	return k
}

// accountRow holds an account's columns (accountColumns) as scanned.
type accountRow struct {
	id               string
	balance          int64
	amount, everyUS  *int64
	anchor, refilled *time.Time
	info             []byte
}

func (r *accountRow) dest() []any {
	return []any{&r.id, &r.balance, &r.amount, &r.everyUS, &r.anchor, &r.refilled, &r.info}
}

func (r *accountRow) account() (store.Account, error) {
	var a store.Account
	if err := json.Unmarshal(r.info, &a); err != nil {
		return store.Account{}, fmt.Errorf("pgstore: account %q: bad info column: %w", r.id, err)
	}
	a.ID, a.Balance, a.RefilledAt, a.Refill = r.id, r.balance, deref(r.refilled), nil
	if r.amount != nil && r.everyUS != nil && r.anchor != nil {
		a.Refill = &store.Refill{Amount: *r.amount, Every: time.Duration(*r.everyUS) * time.Microsecond, Anchor: *r.anchor}
	}
	return a, nil
}

// scanKeyAccount scans a key and its account.
func scanKeyAccount(r row) (store.Key, store.Account, error) {
	var kr keyRow
	var ar accountRow
	if err := r.Scan(append(kr.dest(), ar.dest()...)...); err != nil {
		return store.Key{}, store.Account{}, err
	}
	a, err := ar.account()
	return kr.key(), a, err
}

// deref returns *t, or the zero time if t is nil.
func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
