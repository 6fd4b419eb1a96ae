package redisstore

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go402/go402/store"
	"github.com/redis/go-redis/v9"
)

// TestBucketAcrossStores hammers one bucket from two stores (two clients,
// as two replicas) for about a second of real time — the Redis server's
// clock times the bucket — and checks the admitted count against
// b + r·T + 1 from above and, loosely, from below.
func TestBucketAcrossStores(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a second of real time")
	}
	testBucketAcrossStores(t, newClient(t), newClient(t))
}

func TestBucketAcrossStoresCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster; takes a second of real time")
	}
	testBucketAcrossStores(t, newClusterClient(t), newClusterClient(t))
}

func testBucketAcrossStores(t *testing.T, c1, c2 redis.UniversalClient) {
	const (
		r        = 50.0
		burst    = 10
		interval = time.Second
	)
	s1 := newTestStore(t, c1, nil)
	s2 := mustNew(t, c2, &Options{Prefix: s1.prefix, Timeout: testTimeout})
	b := store.Bucket{Key: "shared", Rate: r, Burst: burst, Cost: 1}
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(interval)
	for _, s := range []*Store{s1, s2, s1, s2, s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				res, err := s.TakeTokens(context.Background(), b)
				if err != nil {
					t.Error(err)
					return
				}
				if res.OK {
					admitted.Add(1)
				} else {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	n := float64(admitted.Load())
	upper := burst + r*elapsed + 1
	lower := burst + r*(elapsed-0.3) - 1 // loose: the first take starts the server's interval a little late
	t.Logf("admitted %v, refused %d in %.3fs; bounds [%.1f, %.1f]", n, refused.Load(), elapsed, lower, upper)
	if n > upper || n < lower {
		t.Errorf("admitted %v, want within [%.1f, %.1f]", n, lower, upper)
	}
	if refused.Load() == 0 {
		t.Error("nothing refused: the test did not hammer the bucket")
	}
}
