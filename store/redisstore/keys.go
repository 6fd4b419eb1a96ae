package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go402/go402/store"
	"github.com/redis/go-redis/v9"
)

// Fields of a key record hash.
const (
	fieldAccount = "account"
	fieldPrefix  = "prefix"
	fieldRevoked = "revoked"
	fieldExpires = "expires_at"
	fieldCreated = "created_at"
)

// errKeyNotFound is returned for unknown keys; it is a variable so that a
// flood of invalid keys served from the negative cache allocates nothing.
var errKeyNotFound = fmt.Errorf("redisstore: lookup: %w", store.ErrNotFound)

// Lookup resolves a key digest to the key and its account. A found key is
// cached in this process for [Options.LookupTTL] and an unknown one for
// [Options.NegativeTTL]; a cached lookup costs no round trip. An uncached
// one costs two — the key record, then its account — because they live
// under different hash tags (different slots on a Cluster), and concurrent
// lookups of the same uncached key share those two round trips. Errors are
// never cached. The account's balance is the one Redis held when the lookup
// reached it (with any refill due then applied); [Store.Spend] always
// reports the current one.
//
// A key whose account no longer exists is reported as not found.
func (s *Store) Lookup(ctx context.Context, d store.Digest) (store.Key, store.Account, error) {
	k, a, _, err := s.LookupShared(ctx, d)
	if err != nil {
		return store.Key{}, store.Account{}, err
	}
	return *k, *a, nil
}

// LookupShared implements [store.SharedLookup]: it is [Store.Lookup]
// returning the records it caches (or the ones its lookup decoded) instead
// of copies of them; they are never modified. The balance is the account's
// Balance, as Lookup reports it.
func (s *Store) LookupShared(ctx context.Context, d store.Digest) (*store.Key, *store.Account, int64, error) {
	now := s.now()
	e, ok := s.cache.get(d, now)
	var f *flight
	var leader bool
	if !ok {
		e, f, leader = s.cache.join(d, now)
	}
	if e != nil {
		if e.notFound {
			return nil, nil, 0, errKeyNotFound
		}
		return &e.key, &e.account, e.account.Balance, nil
	}
	if leader {
		s.fly(ctx, d, f)
	} else {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, nil, 0, backendError("lookup", context.Cause(ctx))
		}
	}
	if f.err != nil {
		return nil, nil, 0, f.err
	}
	return &f.key, &f.account, f.account.Balance, nil
}

// fly makes the lookup of d that f's followers wait for, caches its
// outcome and releases them. The lookup is detached from the leader's
// cancellation, so that one client hanging up does not fail the others; it
// keeps the leader's deadline, if any, and is bounded by the store's
// timeout.
func (s *Store) fly(ctx context.Context, d store.Digest, f *flight) {
	defer s.cache.land(d, f)
	lctx := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		lctx, cancel = context.WithDeadline(lctx, dl)
		defer cancel()
	}
	lctx, cancel := s.withTimeout(lctx)
	defer cancel()
	f.key, f.account, f.err = s.lookup(lctx, d)
	now := s.now()
	switch {
	case f.err == nil:
		if s.lookupTTL > 0 {
			s.cache.put(d, &cacheEntry{key: f.key, account: f.account, expires: now.Add(s.lookupTTL)}, now)
		}
	case errors.Is(f.err, store.ErrNotFound):
		f.err = errKeyNotFound
		if s.negativeTTL > 0 {
			s.cache.put(d, &cacheEntry{notFound: true, expires: now.Add(s.negativeTTL)}, now)
		}
	}
}

func (s *Store) lookup(ctx context.Context, d store.Digest) (store.Key, store.Account, error) {
	m, err := s.rdb.HGetAll(ctx, s.APIKeyRedisKey(d)).Result()
	if err != nil {
		return store.Key{}, store.Account{}, backendError("lookup", err)
	}
	if len(m) == 0 {
		return store.Key{}, store.Account{}, errKeyNotFound
	}
	k, err := decodeKey(d, m)
	if err != nil {
		return store.Key{}, store.Account{}, fmt.Errorf("redisstore: lookup: %w", err)
	}
	a, err := s.account(ctx, k.AccountID)
	if err != nil {
		return store.Key{}, store.Account{}, err
	}
	return k, a, nil
}

// CreateKey generates a random key with the given prefix for an existing
// account, stores its digest, and returns the raw key — the only time it is
// available. See [store.Admin].
func (s *Store) CreateKey(ctx context.Context, accountID, prefix string) (string, store.Key, error) {
	raw, err := store.GenerateKey(prefix)
	if err != nil {
		return "", store.Key{}, fmt.Errorf("redisstore: %w", err)
	}
	k := store.NewKey(raw, accountID)
	k.CreatedAt = s.now()
	if err := s.PutKey(ctx, k); err != nil {
		return "", store.Key{}, err
	}
	return raw, k, nil
}

// PutKey stores k, replacing any key with the same digest, after checking
// that its account exists (two round trips: they live in different slots).
// See [store.Admin].
func (s *Store) PutKey(ctx context.Context, k store.Key) error {
	if k.AccountID == "" {
		return errors.New("redisstore: put key: empty account ID")
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	n, err := s.rdb.Exists(ctx, s.AccountRedisKey(k.AccountID)).Result()
	if err != nil {
		return backendError("put key", err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore: put key: account %q: %w", k.AccountID, store.ErrNotFound)
	}
	rk := s.APIKeyRedisKey(k.Digest)
	revoked := "0"
	if k.Revoked {
		revoked = "1"
	}
	fields := []any{fieldAccount, k.AccountID, fieldPrefix, k.Prefix, fieldRevoked, revoked}
	if !k.ExpiresAt.IsZero() {
		fields = append(fields, fieldExpires, k.ExpiresAt.Format(time.RFC3339Nano))
	}
	if !k.CreatedAt.IsZero() {
		fields = append(fields, fieldCreated, k.CreatedAt.Format(time.RFC3339Nano))
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, rk)
		p.HSet(ctx, rk, fields...)
		return nil
	})
	if err != nil {
		return backendError("put key", err)
	}
	s.cache.drop(k.Digest)
	return nil
}

// RevokeKey marks the key revoked. This Store's cache forgets the key at
// once; other replicas see the revocation within [Options.LookupTTL].
func (s *Store) RevokeKey(ctx context.Context, d store.Digest) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	n, err := revokeScript.Run(ctx, s.rdb, []string{s.APIKeyRedisKey(d)}).Int64()
	if err != nil {
		return backendError("revoke key", err)
	}
	s.cache.drop(d)
	if n == 0 {
		return fmt.Errorf("redisstore: revoke key: %w", store.ErrNotFound)
	}
	return nil
}

func decodeKey(d store.Digest, m map[string]string) (store.Key, error) {
	k := store.Key{
		Digest:    d,
		Prefix:    m[fieldPrefix],
		AccountID: m[fieldAccount],
		Revoked:   m[fieldRevoked] == "1",
	}
	for _, f := range []struct {
		name string
		t    *time.Time
	}{{fieldExpires, &k.ExpiresAt}, {fieldCreated, &k.CreatedAt}} {
		if v, ok := m[f.name]; ok {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return store.Key{}, fmt.Errorf("corrupt key %s: %w", f.name, err)
			}
			*f.t = t
		}
	}
	if k.AccountID == "" {
		return store.Key{}, errors.New("corrupt key: no account")
	}
	return k, nil
}
