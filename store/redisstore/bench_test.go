package redisstore

import (
	"context"
	"math"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go402/go402/store"
	"github.com/redis/go-redis/v9"
)

// roundTrips is a go-redis hook that counts the commands and pipelines
// sent to Redis: each is one round trip.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// countedClient returns a client of the test Redis whose round trips are
// counted by the returned hook.
func countedClient(b *testing.B) (*redis.Client, *roundTrips) {
	c := redis.NewClient(&redis.Options{Addr: redisAddr(), ContextTimeoutEnabled: true})
	b.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		unavailable(b, "no Redis at %s: %v", redisAddr(), err)
	}
	hook := new(roundTrips)
	c.AddHook(hook)
	return c, hook
}

// BenchmarkAllowed measures the allowed path of each operation against the
// local Redis, reporting round trips per operation as counted by a hook.
func BenchmarkAllowed(b *testing.B) {
	c, hook := countedClient(b)
	s := newTestStore(b, c, nil)
	ctx := context.Background()
	const id = "bench"
	if err := s.PutAccount(ctx, store.Account{ID: id, Balance: math.MaxInt64}); err != nil {
		b.Fatal(err)
	}
	raw, _, err := s.CreateKey(ctx, id, "sk_bench_")
	if err != nil {
		b.Fatal(err)
	}
	digest := store.DigestOf(raw)
	bucket := store.Bucket{Account: id, Key: "default", Rate: 1e9, Burst: math.MaxInt32, Cost: 1}
	ops := []struct {
		name string
		op   func() error
	}{
		{"Lookup/cached", func() error { _, _, err := s.Lookup(ctx, digest); return err }},
		{"Spend", func() error { _, err := s.Spend(ctx, id, 1); return err }},
		{"TakeTokens", func() error { _, err := s.TakeTokens(ctx, bucket); return err }},
		{"SpendWithTokens", func() error { _, _, err := s.SpendWithTokens(ctx, id, 1, bucket); return err }},
	}
	for _, o := range ops {
		if err := o.op(); err != nil { // loads the script, fills the cache
			b.Fatal(err)
		}
		for _, parallel := range []bool{false, true} {
			name := o.name
			if parallel {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				if parallel { // open the pool's connections before counting
					var wg sync.WaitGroup
					for i := 0; i < 4*runtime.GOMAXPROCS(0); i++ {
						wg.Add(1)
						go func() { defer wg.Done(); o.op() }()
					}
					wg.Wait()
				}
				b.ReportAllocs()
				b.ResetTimer()
				start := hook.n.Load()
				if parallel {
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := o.op(); err != nil {
								b.Error(err)
								return
							}
						}
					})
				} else {
					for i := 0; i < b.N; i++ {
						if err := o.op(); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(hook.n.Load()-start)/float64(b.N), "roundtrips/op")
			})
		}
	}
}
