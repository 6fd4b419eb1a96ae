package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go402/go402/store"
	"github.com/redis/go-redis/v9"
)

// fieldLastUsed is the field of a key record holding its last-use time, in
// UTC with nine fractional digits, so that times compare as strings.
const fieldLastUsed = "last_used_at"

// lastUsedLayout is the fixed-width layout of fieldLastUsed.
const lastUsedLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Page sizes of [Store.Accounts].
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// maxUpdateAttempts bounds how often [Store.UpdateAccount] retries when
// another client changed the account between its read and its write.
const maxUpdateAttempts = 1000

// AccountsIndexRedisKey returns the name of the Redis sorted set that lists
// every account ID (all with score 0, so in order of ID), for
// [Store.Accounts].
func (s *Store) AccountsIndexRedisKey() string { return s.prefix + "accounts" }

// AccountKeysRedisKey returns the name of the Redis set that holds the
// hexadecimal digests of an account's keys, in the account's hash slot,
// for [Store.Keys].
func (s *Store) AccountKeysRedisKey(accountID string) string {
	return s.prefix + "{acct:" + accountID + "}:keys"
}

// errStopUpdate carries an error of UpdateAccount's fn out of the
// transaction, so that it is returned unchanged.
type errStopUpdate struct{ err error }

func (e errStopUpdate) Error() string { return e.err.Error() }

// UpdateAccount applies fn to the account atomically, with any refill due
// now applied first (see [store.Admin]): it watches the account's hash,
// reads it, calls fn and writes the result in a MULTI/EXEC transaction,
// and starts again if another client changed the account in between, so
// fn may be called more than once and must only change the account it is
// given. The account's token buckets are kept. fn must not change the ID;
// the result must pass [store.Account.Validate].
func (s *Store) UpdateAccount(ctx context.Context, id string, fn func(*store.Account) error) (store.Account, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	k := s.AccountRedisKey(id)
	for range maxUpdateAttempts {
		var a store.Account
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			var err error
			a, err = s.updateWatched(ctx, tx, id, fn)
			return err
		}, k)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if stop := (errStopUpdate{}); errors.As(err, &stop) {
			return store.Account{}, stop.err
		}
		if err != nil {
			return store.Account{}, err
		}
		s.cache.dropAccount(id)
		s.announce(ctx, "a"+id)
		return a, nil
	}
	return store.Account{}, fmt.Errorf("redisstore: update account %q: changed by others %d times in a row", id, maxUpdateAttempts)
}

// updateWatched is one attempt of UpdateAccount on the connection tx,
// which watches the account's hash.
func (s *Store) updateWatched(ctx context.Context, tx *redis.Tx, id string, fn func(*store.Account) error) (store.Account, error) {
	k := s.AccountRedisKey(id)
	v, err := accountScript.Run(ctx, tx, []string{k}, s.timeArg()).Slice()
	if err != nil {
		return store.Account{}, backendError("update account "+strconv.Quote(id), err)
	}
	if len(v) == 0 {
		return store.Account{}, fmt.Errorf("redisstore: account %q: %w", id, store.ErrNotFound)
	}
	a, err := decodeAccount(pairs(v))
	if err != nil {
		return store.Account{}, fmt.Errorf("redisstore: account %q: %w", id, err)
	}
	if err := fn(&a); err != nil {
		return store.Account{}, errStopUpdate{err}
	}
	if a.ID != id {
		return store.Account{}, errors.New("redisstore: update account: the account ID must not change")
	}
	fields, err := encodeAccount(&a)
	if err != nil {
		return store.Account{}, err
	}
	_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, k, accountFields...)
		p.HSet(ctx, k, fields...)
		return nil
	})
	if err != nil && !errors.Is(err, redis.TxFailedErr) {
		err = backendError("update account "+strconv.Quote(id), err)
	}
	return a, err
}

// Accounts lists accounts in order of ID, those after after, at most limit
// (100 if ≤ 0, at most 1000), each with any refill due applied: one round
// trip for the IDs, from the index [Store.PutAccount] keeps, and one
// pipeline for the accounts. See [store.Admin].
func (s *Store) Accounts(ctx context.Context, after string, limit int) ([]store.Account, error) {
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	start := "-"
	if after != "" {
		start = "(" + after
	}
	ids, err := s.rdb.ZRangeByLex(ctx, s.AccountsIndexRedisKey(), &redis.ZRangeBy{
		Min: start, Max: "+", Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, backendError("accounts", err)
	}
	cmds := make([]*redis.Cmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = accountScript.Eval(ctx, p, []string{s.AccountRedisKey(id)}, s.timeArg())
		}
		return nil
	})
	if err != nil {
		return nil, backendError("accounts", err)
	}
	out := make([]store.Account, 0, len(ids))
	for i, c := range cmds {
		v, _ := c.Slice()
		if len(v) == 0 {
			continue // indexed but no longer stored
		}
		a, err := decodeAccount(pairs(v))
		if err != nil {
			return nil, fmt.Errorf("redisstore: account %q: %w", ids[i], err)
		}
		out = append(out, a)
	}
	return out, nil
}

// Keys lists an account's keys, revoked and expired ones included, in order
// of CreatedAt, then Prefix: one round trip for the digests, from the set
// [Store.PutKey] keeps, and one pipeline for the keys. An unknown account
// yields an error wrapping [store.ErrNotFound]. See [store.Admin].
func (s *Store) Keys(ctx context.Context, accountID string) ([]store.Key, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	ok, err := s.rdb.HExists(ctx, s.AccountRedisKey(accountID), fieldBalance).Result()
	if err != nil {
		return nil, backendError("keys", err)
	}
	if !ok {
		return nil, fmt.Errorf("redisstore: keys: account %q: %w", accountID, store.ErrNotFound)
	}
	hexes, err := s.rdb.SMembers(ctx, s.AccountKeysRedisKey(accountID)).Result()
	if err != nil {
		return nil, backendError("keys", err)
	}
	digests := make([]store.Digest, 0, len(hexes))
	for _, h := range hexes {
		var d store.Digest
		if d.UnmarshalText([]byte(h)) == nil {
			digests = append(digests, d)
		}
	}
	cmds := make([]*redis.MapStringStringCmd, len(digests))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, d := range digests {
			cmds[i] = p.HGetAll(ctx, s.APIKeyRedisKey(d))
		}
		return nil
	})
	if err != nil {
		return nil, backendError("keys", err)
	}
	keys := make([]store.Key, 0, len(digests))
	for i, c := range cmds {
		m := c.Val()
		if len(m) == 0 || m[fieldAccount] != accountID {
			continue // deleted, or moved to another account
		}
		k, err := decodeKey(digests[i], m)
		if err != nil {
			return nil, fmt.Errorf("redisstore: keys: %w", err)
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b store.Key) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.Prefix, b.Prefix))
	})
	return keys, nil
}

// touchScript: KEYS[1] key record; ARGV[1] a time in lastUsedLayout. Sets
// the last-use time if the record exists and holds none later.
var touchScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = redis.call('HGET', KEYS[1], 'last_used_at')
if cur and cur >= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'last_used_at', ARGV[1])
return 1
`)

// TouchKeys records when keys were last used, in one pipeline: each key's
// LastUsedAt becomes the later of its own and the time given; unknown
// digests are ignored. Cached lookups are not dropped: LastUsedAt is
// informative, read by [Store.Keys]. See [store.Admin].
func (s *Store) TouchKeys(ctx context.Context, uses map[store.Digest]time.Time) error {
	if len(uses) == 0 {
		return nil
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for d, t := range uses {
			touchScript.Eval(ctx, p, []string{s.APIKeyRedisKey(d)}, t.UTC().Format(lastUsedLayout))
		}
		return nil
	})
	if err != nil {
		return backendError("touch keys", err)
	}
	return nil
}

var _ store.Admin = (*Store)(nil)
