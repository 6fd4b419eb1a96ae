package redisstore

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go402/go402/store"
)

// testTwoReplicasExact seeds the accounts with balance 1000 and lets two
// stores on two clients (as two replicas) spend 7 at a time from each of
// them with 32 goroutines apiece, half through Spend and half through
// SpendWithTokens: exactly floor(1000/7) = 142 spends must succeed per
// account, every reported balance must be distinct and non-negative, and
// 1000 mod 7 = 6 must remain.
func testTwoReplicasExact(t *testing.T, s1, s2 *Store, ids []string) {
	const (
		balance = 1000
		cost    = 7
		workers = 32
	)
	ctx := context.Background()
	for _, id := range ids {
		if err := s1.PutAccount(ctx, store.Account{ID: id, Balance: balance}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		var admitted atomic.Int64
		var mu sync.Mutex
		seen := map[int64]bool{}
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			s := []*Store{s1, s2}[w%2]
			fused := w%4 >= 2
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					var r store.SpendResult
					var err error
					if fused {
						b := store.Bucket{Account: id, Key: "default", Rate: 1e6, Burst: math.MaxInt32, Cost: 1}
						r, _, err = s.SpendWithTokens(ctx, id, cost, b)
					} else {
						r, err = s.Spend(ctx, id, cost)
					}
					if err != nil {
						t.Error(err)
						return
					}
					if !r.OK {
						return
					}
					admitted.Add(1)
					mu.Lock()
					dup := seen[r.Balance]
					seen[r.Balance] = true
					mu.Unlock()
					if dup || r.Balance < 0 {
						t.Errorf("account %s: balance %d reported twice or negative", id, r.Balance)
					}
				}
			}()
		}
		wg.Wait()
		if got := admitted.Load(); got != balance/cost {
			t.Errorf("account %s: admitted %d, want %d", id, got, balance/cost)
		}
		r, err := s2.Spend(ctx, id, 0)
		if err != nil || r.Balance != balance%cost {
			t.Errorf("account %s: final balance %d (%v), want %d", id, r.Balance, err, balance%cost)
		}
	}
}

func TestTwoReplicasExact(t *testing.T) {
	c1, c2 := newClient(t), newClient(t)
	s1 := newTestStore(t, c1, nil)
	s2 := mustNew(t, c2, &Options{Prefix: s1.prefix, Timeout: testTimeout})
	testTwoReplicasExact(t, s1, s2, []string{"exact-1", "exact-2"})
}

func TestTwoReplicasExactCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	c1, c2 := newClusterClient(t), newClusterClient(t)
	s1 := newTestStore(t, c1, nil)
	s2 := mustNew(t, c2, &Options{Prefix: s1.prefix, Timeout: testTimeout})
	ids := spreadAccounts(t, c1, s1, 1)
	nodes := map[string]bool{}
	for _, id := range ids {
		nodes[nodeOf(t, c1, s1.AccountRedisKey(id))] = true
		if a, b := nodeOf(t, c1, s1.AccountRedisKey(id)), nodeOf(t, c1, s1.BucketRedisKey(store.Bucket{Account: id, Key: "default"})); a != b {
			t.Fatalf("account %s on %s, its bucket on %s", id, a, b)
		}
	}
	if len(nodes) != 3 {
		t.Fatalf("accounts on %d nodes, want 3", len(nodes))
	}
	t.Logf("accounts %v on %d nodes", ids, len(nodes))
	testTwoReplicasExact(t, s1, s2, ids)
}
