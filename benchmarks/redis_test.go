package benchmarks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	ulule "github.com/ulule/limiter/v3"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/go402/go402/store"
	"github.com/go402/go402/store/redisstore"
)

// The Redis benchmarks compare, against the Redis at REDIS_ADDR (default
// 127.0.0.1:6379), go402's whole decision for a request — the key's lookup
// (cached in-process), its account's rate limit and its charge, in one
// script — with the limit alone of redis_rate and of ulule/limiter's Redis
// store, for one client and for 10,000. Every call is allowed and checked.
// Besides the time per call it reports srv-µs/op, the Redis server's time
// per call in EVALSHA (every implementation's one command), a figure the
// noise of a shared client machine does not blur as much.
//
//	go test -c -o redis.test .
//	for i in 1 2 3 4 5 6; do ./redis.test -test.run x -test.bench Redis -test.benchmem; done | tee redis.txt
//	benchstat -col /impl redis.txt

// redisOp is one allowed request of client i.
type redisOp func(ctx context.Context, i int) error

// redisImpl builds the operation for n clients on client c, its keys under
// prefix.
type redisImpl struct {
	name string
	make func(tb testing.TB, c *redis.Client, prefix string, n int) redisOp
}

var redisImpls = []redisImpl{
	{"go402-fused", go402Fused},
	{"redis_rate", redisRate},
	{"ulule-redis", ululeRedis},
}

func BenchmarkRedis(b *testing.B) {
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	b.Cleanup(func() { c.Close() }) // after the cleanups below, which delete the keys
	if err := c.Ping(context.Background()).Err(); err != nil {
		if os.Getenv("CI") != "" {
			b.Fatalf("no Redis at %s: %v", addr, err)
		}
		b.Skipf("no Redis at %s: %v", addr, err)
	}
	ctx := context.Background()
	for _, n := range []int{1, 10000} {
		for _, impl := range redisImpls {
			prefix := "go402bench:" + randomHex() + ":"
			b.Cleanup(func() { deleteKeys(c, prefix) })
			op := impl.make(b, c, prefix, n)
			for i := 0; i < n; i++ { // loads the scripts, warms the caches
				if err := op(ctx, i); err != nil {
					b.Fatal(err)
				}
			}
			b.Run(fmt.Sprintf("keys=%d/impl=%s", n, impl.name), func(b *testing.B) {
				b.ReportAllocs()
				usec := scriptMicros(b, c)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := op(ctx, i%n); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric((scriptMicros(b, c)-usec)/float64(b.N), "srv-µs/op")
			})
		}
	}
}

// scriptMicros returns the microseconds the Redis server has spent in
// EVALSHA since its statistics were last reset (INFO commandstats): the
// time each implementation's script takes on the server, the commands it
// calls included, and without the network or the client.
func scriptMicros(b *testing.B, c *redis.Client) float64 {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		stats, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(stats, ",") {
			if v, ok := strings.CutPrefix(kv, "usec="); ok {
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatalf("INFO commandstats: %q", line)
				}
				return n
			}
		}
	}
	return 0
}

// go402Fused is the whole go402 decision: Lookup (cached) and
// SpendWithTokens on the account's bucket.
func go402Fused(tb testing.TB, c *redis.Client, prefix string, n int) redisOp {
	s, err := redisstore.New(c, &redisstore.Options{Prefix: prefix})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	ctx := context.Background()
	digests := make([]store.Digest, n)
	for i := range digests {
		id := "acct-" + strconv.Itoa(i)
		if err := s.PutAccount(ctx, store.Account{ID: id, Plan: "pro", Balance: 1 << 50}); err != nil {
			tb.Fatal(err)
		}
		k := store.NewKey("sk_bench_"+strconv.Itoa(i)+"_0123456789", id)
		if err := s.PutKey(ctx, k); err != nil {
			tb.Fatal(err)
		}
		digests[i] = k.Digest
	}
	for start := time.Now(); !subscribed(ctx, c, prefix); { // subscribing flushes the cache
		if time.Since(start) > 10*time.Second {
			tb.Fatal("the store did not subscribe")
		}
		time.Sleep(time.Millisecond)
	}
	return func(ctx context.Context, i int) error {
		_, a, err := s.Lookup(ctx, digests[i])
		if err != nil {
			return err
		}
		b := store.Bucket{Account: a.ID, Key: "default", Rate: perSecond, Burst: burst, Cost: 1}
		sr, br, err := s.SpendWithTokens(ctx, a.ID, 10, b)
		if err == nil && (!sr.OK || !br.OK) {
			err = fmt.Errorf("refused: %+v %+v", sr, br)
		}
		return err
	}
}

// subscribed reports whether a store under prefix listens for
// invalidations.
func subscribed(ctx context.Context, c *redis.Client, prefix string) bool {
	m, err := c.PubSubNumSub(ctx, prefix+"invalidate").Result()
	return err == nil && m[prefix+"invalidate"] > 0
}

func redisRate(tb testing.TB, c *redis.Client, prefix string, n int) redisOp {
	l := redis_rate.NewLimiter(c)
	limit := redis_rate.Limit{Rate: perSecond, Burst: burst, Period: time.Second}
	keys := clientKeys(prefix, n)
	return func(ctx context.Context, i int) error {
		r, err := l.Allow(ctx, keys[i], limit)
		if err == nil && r.Allowed != 1 {
			err = fmt.Errorf("refused: %+v", r)
		}
		return err
	}
}

func ululeRedis(tb testing.TB, c *redis.Client, prefix string, n int) redisOp {
	st, err := ulredis.NewStoreWithOptions(c, ulule.StoreOptions{Prefix: prefix + "ulule"})
	if err != nil {
		tb.Fatal(err)
	}
	l := ulule.New(st, ulule.Rate{Period: time.Second, Limit: perSecond})
	keys := clientKeys("", n)
	return func(ctx context.Context, i int) error {
		r, err := l.Get(ctx, keys[i])
		if err == nil && r.Reached {
			err = fmt.Errorf("refused: %+v", r)
		}
		return err
	}
}

func clientKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = prefix + "client-" + strconv.Itoa(i)
	}
	return keys
}

func randomHex() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// deleteKeys deletes the keys a benchmark left: under prefix, and under
// redis_rate's own prefix.
func deleteKeys(c *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, p := range []string{prefix, "rate:" + prefix} {
		iter := c.Scan(ctx, 0, p+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	}
}
