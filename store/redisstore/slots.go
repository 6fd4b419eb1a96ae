package redisstore

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/go402/go402/store"
	"github.com/redis/go-redis/v9"
)

// acquireSlotScript: KEYS[1] the sorted set of a key's slots, scored by
// the end of their lease in microseconds; ARGV time, max, lease (µs), slot
// id. Drops the slots whose lease ended, then adds the slot if fewer than
// max are held. Returns 1 if it did, else 0. The set expires with its
// latest lease.
var acquireSlotScript = redis.NewScript(luaLib + `
local now_us = micros(server_time())
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now_us))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
local ends = now_us + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], int(ends), ARGV[4])
local ms = math.ceil(tonumber(ARGV[3]) / 1000)
if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], ms) end
return 1
`)

// AcquireSlot implements [store.Slots] with a sorted set per key (see
// [Store.SlotsRedisKey]), in one round trip, timed by the Redis server's
// clock: every replica counts the same slots, and the slots of a process
// that died are freed when their lease ends.
func (s *Store) AcquireSlot(ctx context.Context, key string, n int, lease time.Duration) (string, bool, error) {
	if n <= 0 || lease <= 0 {
		return "", false, fmt.Errorf("redisstore: slots: max and lease must be > 0, got %d and %v: %w", n, lease, store.ErrInvalidAmount)
	}
	slot := rand.Text()
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	us := max(lease.Microseconds(), 1)
	ok, err := acquireSlotScript.Run(ctx, s.rdb, []string{s.SlotsRedisKey(key)}, s.timeArg(), n, us, slot).Int()
	if err != nil {
		return "", false, backendError("acquire slot", err)
	}
	if ok != 1 {
		return "", false, nil
	}
	return slot, true, nil
}

// ReleaseSlot implements [store.Slots]: one ZREM.
func (s *Store) ReleaseSlot(ctx context.Context, key, slot string) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if err := s.rdb.ZRem(ctx, s.SlotsRedisKey(key), slot).Err(); err != nil {
		return backendError("release slot", err)
	}
	return nil
}

// SlotsRedisKey returns the name of the sorted set that holds the slots
// of key: the prefix, the hash tag {key}, then ":slots".
func (s *Store) SlotsRedisKey(key string) string {
	return s.prefix + "{" + key + "}:slots"
}
