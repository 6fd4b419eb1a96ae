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
// [Options.NegativeTTL]; a cached lookup costs no round trip and allocates
// nothing. An uncached one costs one round trip on a single Redis (one
// script reads the key and its account) and two on a Cluster, where they
// live in different slots; concurrent lookups of the same uncached key
// share it. Errors are never cached. The account's balance is the one
// Redis held when the lookup reached it (with any refill due then
// applied); [Store.Spend] always reports the current one.
//
// A cached account's Features, Metadata, Refill and RateLimit are shared
// with the cache: treat them as read-only, or take [store.Account.Clone].
// A key whose account no longer exists is reported as not found.
func (s *Store) Lookup(ctx context.Context, d store.Digest) (store.Key, store.Account, error) {
	now := s.now()
	e, ok := s.cache.get(d, now)
	var f *flight
	var leader bool
	if !ok {
		e, f, leader = s.cache.join(d, now)
	}
	if e != nil {
		if e.notFound {
			return store.Key{}, store.Account{}, errKeyNotFound
		}
		return e.key, e.account, nil
	}
	if leader {
		s.fly(ctx, d, f)
	} else {
		select {
		case <-f.done:
		case <-ctx.Done():
			return store.Key{}, store.Account{}, backendError("lookup", context.Cause(ctx))
		}
	}
	if f.err != nil {
		return store.Key{}, store.Account{}, f.err
	}
	return f.key, f.account, nil
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
			s.cache.put(d, &cacheEntry{key: f.key, account: f.account, expires: now.Add(s.lookupTTL)}, now, f.gen)
		}
	case errors.Is(f.err, store.ErrNotFound):
		f.err = errKeyNotFound
		if s.negativeTTL > 0 {
			s.cache.put(d, &cacheEntry{notFound: true, expires: now.Add(s.negativeTTL)}, now, f.gen)
		}
	}
}

// lookup reads the key record of d and its account from Redis.
func (s *Store) lookup(ctx context.Context, d store.Digest) (store.Key, store.Account, error) {
	if !s.oneTrip {
		return s.lookupTwoTrips(ctx, d)
	}
	v, err := lookupScript.Run(ctx, s.rdb, []string{s.APIKeyRedisKey(d)},
		s.timeArg(), s.prefix+"{acct:", "}:account").Slice()
	if err != nil {
		return store.Key{}, store.Account{}, backendError("lookup", err)
	}
	if len(v) == 0 {
		return store.Key{}, store.Account{}, errKeyNotFound
	}
	if len(v) != 2 {
		return store.Key{}, store.Account{}, errReply("lookup")
	}
	km, _ := v[0].([]any)
	k, err := decodeKey(d, pairs(km))
	if err != nil {
		return store.Key{}, store.Account{}, fmt.Errorf("redisstore: lookup: %w", err)
	}
	am, _ := v[1].([]any)
	if len(am) == 0 {
		return store.Key{}, store.Account{}, fmt.Errorf("redisstore: account %q: %w", k.AccountID, store.ErrNotFound)
	}
	a, err := decodeAccount(pairs(am))
	if err != nil {
		return store.Key{}, store.Account{}, fmt.Errorf("redisstore: account %q: %w", k.AccountID, err)
	}
	return k, a, nil
}

// lookupTwoTrips is lookup on a Cluster: the key record, then its account.
func (s *Store) lookupTwoTrips(ctx context.Context, d store.Digest) (store.Key, store.Account, error) {
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

// pairs turns an HGETALL reply into a map.
func pairs(v []any) map[string]string {
	m := make(map[string]string, len(v)/2)
	for i := 0; i+1 < len(v); i += 2 {
		k, _ := v[i].(string)
		val, _ := v[i+1].(string)
		m[k] = val
	}
	return m
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
// that its account exists (two round trips: they live in different slots),
// adds its digest to the account's set of keys ([Store.Keys]), and
// announces the change to the other replicas' caches. A revoked key stays
// revoked: the record is replaced in one script that keeps its
// revocation. See [store.Admin].
func (s *Store) PutKey(ctx context.Context, k store.Key) error {
	if k.AccountID == "" {
		return errors.New("redisstore: put key: empty account ID")
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	n, err := s.rdb.HExists(ctx, s.AccountRedisKey(k.AccountID), fieldBalance).Result()
	if err != nil {
		return backendError("put key", err)
	}
	if !n {
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
	if !k.LastUsedAt.IsZero() {
		fields = append(fields, fieldLastUsed, k.LastUsedAt.UTC().Format(lastUsedLayout))
	}
	err = putKeyScript.Run(ctx, s.rdb, []string{rk}, fields...).Err()
	if err == nil { // the account's set of keys lives in the account's slot
		err = s.rdb.SAdd(ctx, s.AccountKeysRedisKey(k.AccountID), k.Digest.String()).Err()
	}
	if err != nil {
		return backendError("put key", err)
	}
	s.cache.drop(k.Digest)
	s.announce(ctx, "k"+k.Digest.String())
	return nil
}

// RevokeKey marks the key revoked. This Store's cache forgets the key at
// once, and the other replicas' caches as soon as the announcement reaches
// them (see [Options.LookupTTL]).
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
	s.announce(ctx, "k"+d.String())
	return nil
}

// putKeyScript: KEYS[1] key record; ARGV field, value, … Replaces the
// record, keeping a revoked key revoked.
var putKeyScript = redis.NewScript(`
local revoked = redis.call('HGET', KEYS[1], '` + fieldRevoked + `')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV))
if revoked == '1' then redis.call('HSET', KEYS[1], '` + fieldRevoked + `', '1') end
return 1
`)

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
	}{{fieldExpires, &k.ExpiresAt}, {fieldCreated, &k.CreatedAt}, {fieldLastUsed, &k.LastUsedAt}} {
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
