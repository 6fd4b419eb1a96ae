package redisstore

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go402/go402/store"
	"github.com/go402/go402/store/storetest"
	"github.com/redis/go-redis/v9"
)

func TestNewOptions(t *testing.T) {
	good := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer good.Close()
	plain := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer plain.Close()
	tests := []struct {
		name   string
		client redis.UniversalClient
		opts   *Options
		err    string // substring; empty means success
	}{
		{"defaults", good, nil, ""},
		{"nil client", nil, nil, "nil client"},
		{"context timeouts off", plain, nil, "ContextTimeoutEnabled"},
		{"brace in prefix", good, &Options{Prefix: "a{b"}, "Prefix"},
		{"negative timeout", good, &Options{Timeout: -1}, "Timeout"},
		{"negative cache size", good, &Options{LookupCacheSize: -1}, "LookupCacheSize"},
		{"short operation TTL", good, &Options{OperationTTL: time.Millisecond}, "OperationTTL"},
		{"caches off", good, &Options{LookupTTL: -1, NegativeTTL: -1}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.client, tc.opts)
			if tc.err == "" {
				if err != nil || s == nil {
					t.Fatalf("New = %v, %v", s, err)
				}
				s.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "redisstore: ") {
				t.Fatalf("New error = %v, want one mentioning %q", err, tc.err)
			}
		})
	}
}

func TestKeyLayout(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer c.Close()
	s := mustNew(t, c, nil)
	ak, bk := s.AccountRedisKey("42"), s.BucketRedisKey(store.Bucket{Account: "42", Key: "default"})
	if ak != "go402:{acct:42}:account" || bk != ak || bucketField(store.Bucket{Account: "42", Key: "default"}) != "bucket:default" {
		t.Errorf("keys %q, %q", ak, bk)
	}
	keys := s.spendKeys("42")
	if m := keys[1]; hashTag(m) != "acct:42" || !strings.HasPrefix(m, "go402:{acct:42}:op:"+s.ops.base) {
		t.Errorf("operation marker %q", m)
	}
	if keys[0] != ak || keys[2] != s.HoldsRedisKey("42") || keys[2] != "go402:{acct:42}:holds" {
		t.Errorf("spend keys %q", keys)
	}
	if next := s.spendKeys("42")[1]; next == keys[1] {
		t.Errorf("two operations share the marker %q", next)
	}
	if got := s.BucketRedisKey(store.Bucket{Key: "default:192.0.2.1"}); got != "go402:{default:192.0.2.1}:bucket" {
		t.Errorf("stand-alone bucket key %q", got)
	}
	if hashTag(ak) != "acct:42" || hashTag(bk) != "acct:42" {
		t.Errorf("hash tags %q, %q", hashTag(ak), hashTag(bk))
	}
	if got := hashTag(s.APIKeyRedisKey(store.DigestOf("sk_x"))); !strings.HasPrefix(got, "key:") || len(got) != 4+64 {
		t.Errorf("key record tag %q", got)
	}
	for key, tag := range map[string]string{"a{b}c": "b", "a{}c{d}": "a{}c{d}", "abc": "abc", "{x}{y}": "x"} {
		if got := hashTag(key); got != tag {
			t.Errorf("hashTag(%q) = %q, want %q", key, got, tag)
		}
	}
}

func TestAccountRoundTrip(t *testing.T) {
	s := newTestStore(t, newClient(t), nil)
	ctx := context.Background()
	anchor := time.Date(2100, 3, 1, 12, 0, 0, 123456789, time.UTC) // no refill due: Account shows it as put
	want := store.Account{
		ID: "acct-round-trip", Plan: "pro", Status: store.StatusTrialing,
		PeriodEnd:  time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC),
		Features:   []string{"reports", "export"},
		Balance:    math.MaxInt64,
		Refill:     &store.Refill{Amount: math.MaxInt64 - 1, Every: 30*24*time.Hour + 7, Anchor: anchor},
		RefilledAt: anchor,
		RateLimit:  &store.RateLimit{Rate: 2.5, Burst: 7},
		Metadata:   map[string]string{"owner": "ops"},
		GraceUntil: time.Date(2030, 1, 9, 3, 4, 5, 6, time.UTC),
		Lapse:      store.LapsePaymentMethodInvalid,
		PaymentURL: "https://billing.example.com/p/login/x",
	}
	if err := s.PutAccount(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Account(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.PeriodEnd.Equal(want.PeriodEnd) || !got.Refill.Anchor.Equal(want.Refill.Anchor) || !got.RefilledAt.Equal(want.RefilledAt) ||
		!got.GraceUntil.Equal(want.GraceUntil) {
		t.Errorf("times changed: %+v", got)
	}
	got.PeriodEnd, got.Refill.Anchor, got.RefilledAt, got.GraceUntil = want.PeriodEnd, want.Refill.Anchor, want.RefilledAt, want.GraceUntil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Account = %+v\nwant      %+v", got, want)
	}

	// Money is exact at the ends of int64: no float in the way.
	r, err := s.Spend(ctx, want.ID, math.MaxInt64-1)
	if err != nil || !r.OK || r.Balance != 1 {
		t.Errorf("Spend(MaxInt64-1) = %+v, %v; want OK, balance 1", r, err)
	}
	if _, err := s.TopUp(ctx, want.ID, math.MaxInt64); !errors.Is(err, store.ErrInvalidAmount) {
		t.Errorf("TopUp overflowing: %v, want ErrInvalidAmount", err)
	}
	if b, err := s.TopUp(ctx, want.ID, math.MaxInt64-1); err != nil || b != math.MaxInt64 {
		t.Errorf("TopUp to MaxInt64 = %d, %v", b, err)
	}
	if _, err := s.Account(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Account(missing): %v", err)
	}
	if _, err := s.TopUp(ctx, "missing", 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TopUp(missing): %v", err)
	}
	if err := s.PutAccount(ctx, store.Account{ID: "neg", Balance: -1}); err == nil {
		t.Error("PutAccount accepted a negative balance")
	}
}

// TestRefillMatchesMemory drives the script's refill arithmetic, at
// nanosecond-odd anchors and periods and with random jumps of the clock,
// against the memory store's, through Spend and SpendWithTokens in turn.
func TestRefillMatchesMemory(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	periods := []time.Duration{time.Second + 7, time.Hour, 24*time.Hour - 1, 30 * 24 * time.Hour, 365*24*time.Hour + 13, 1500 * time.Microsecond}
	for _, every := range periods {
		clock := new(storetest.Clock)
		s := newTestStore(t, c, &Options{Clock: clock.Now})
		s.scriptClock = clock.Now
		ref := store.Account{
			ID:      "refill-" + every.String(),
			Balance: 5,
			Refill:  &store.Refill{Amount: 50, Every: every, Anchor: clock.Now().Add(3*every + 987654321)},
		}
		mem := store.NewMemory(&store.MemoryOptions{Clock: clock.Now}) // the reference
		if err := s.PutAccount(ctx, ref); err != nil {
			t.Fatal(err)
		}
		if err := mem.PutAccount(ctx, ref); err != nil {
			t.Fatal(err)
		}
		for step := 0; step < 60; step++ {
			clock.Advance((time.Duration(rng.Int64N(int64(every)*5/2)) + time.Microsecond).Truncate(time.Microsecond)) // the script clock has µs resolution
			cost := rng.Int64N(30)
			want, err := mem.Spend(ctx, ref.ID, cost)
			if err != nil {
				t.Fatal(err)
			}
			var got store.SpendResult
			if step%2 == 0 {
				got, err = s.Spend(ctx, ref.ID, cost)
			} else { // reads the refill fields as a fused decision does
				b := store.Bucket{Account: ref.ID, Key: "k", Rate: 1e9, Burst: 1e9, Cost: 1}
				got, _, err = s.SpendWithTokens(ctx, ref.ID, cost, b)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.OK != want.OK || got.Balance != want.Balance || !got.NextRefill.Equal(want.NextRefill) {
				t.Fatalf("every %v, step %d: Spend(%d) = %+v, want %+v", every, step, cost, got, want)
			}
		}
		a, err := s.Account(ctx, ref.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantA, err := mem.Account(ctx, ref.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !a.RefilledAt.Equal(wantA.RefilledAt) || a.Balance != wantA.Balance {
			t.Errorf("every %v: stored RefilledAt %v balance %d, want %v %d", every, a.RefilledAt, a.Balance, wantA.RefilledAt, wantA.Balance)
		}
	}
}

// TestLookupCache checks what a second store (another replica) sees of the
// changes made through the first, the clock standing still: a revocation
// within a second, through the announcement; a key written to Redis by
// other means only once the negative cache expires.
func TestLookupCache(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	clock := new(storetest.Clock)
	opts := &Options{Clock: clock.Now, LookupTTL: 5 * time.Second, NegativeTTL: time.Second}
	a := newTestStore(t, c, opts)
	b := mustNew(t, c, &Options{Prefix: a.prefix, Clock: clock.Now, LookupTTL: 5 * time.Second, NegativeTTL: time.Second})
	waitLive(t, a, b)
	if err := a.PutAccount(ctx, store.Account{ID: "cache", Balance: 10}); err != nil {
		t.Fatal(err)
	}
	raw, k, err := a.CreateKey(ctx, "cache", "sk_test_")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw, "sk_test_") || k.Digest != store.DigestOf(raw) || k.CreatedAt.IsZero() {
		t.Fatalf("CreateKey = %q, %+v", raw, k)
	}
	lookup := func(s *Store) (store.Key, error) {
		k, _, err := s.Lookup(ctx, store.DigestOf(raw))
		return k, err
	}
	if got, err := lookup(b); err != nil || got.Revoked || got.AccountID != "cache" {
		t.Fatalf("b.Lookup = %+v, %v", got, err)
	}
	if err := a.RevokeKey(ctx, k.Digest); err != nil {
		t.Fatal(err)
	}
	if got, _ := lookup(a); !got.Revoked {
		t.Error("revoking store still sees the key unrevoked")
	}
	within(t, time.Second, "the other store sees the revocation", func() bool {
		got, _ := lookup(b)
		return got.Revoked
	})

	// Unknown keys are remembered for NegativeTTL.
	k2 := store.NewKey("sk_test_later_created_key", "cache")
	if _, err := lookup2(ctx, b, k2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	if err := c.HSet(ctx, a.APIKeyRedisKey(k2.Digest), fieldAccount, "cache", fieldRevoked, "0").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := lookup2(ctx, b, k2); !errors.Is(err, store.ErrNotFound) {
		t.Error("negative cache did not hold")
	}
	clock.Advance(time.Second)
	if _, err := lookup2(ctx, b, k2); err != nil {
		t.Errorf("key still unknown after NegativeTTL: %v", err)
	}
	if err := a.RevokeKey(ctx, store.DigestOf("never stored")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeKey(unknown): %v", err)
	}
	if err := a.PutKey(ctx, store.NewKey("sk_orphan_key_123456", "no-such-account")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PutKey for unknown account: %v", err)
	}
}

func lookup2(ctx context.Context, s *Store, k store.Key) (store.Key, error) {
	got, _, err := s.Lookup(ctx, k.Digest)
	return got, err
}

func TestLookupCacheBounded(t *testing.T) {
	c := newLookupCache(64)
	now := time.Now()
	for i := 0; i < 1000; i++ {
		var d store.Digest
		d[0], d[1] = byte(i), byte(i>>8)
		c.put(d, &cacheEntry{notFound: true, expires: now.Add(time.Hour)}, now, c.gen)
		if len(c.m) > 64 {
			t.Fatalf("cache grew to %d entries", len(c.m))
		}
	}
}

// TestReadsApplyDueRefill checks that Account and Lookup show a refill that
// is due but that no spend has applied yet, as the memory store does.
func TestReadsApplyDueRefill(t *testing.T) {
	s := newTestStore(t, newClient(t), nil)
	ctx := context.Background()
	a := store.Account{ID: "due", Refill: &store.Refill{Amount: 100, Every: time.Hour, Anchor: time.Now().Add(-90 * time.Minute)}}
	if err := s.PutAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	k := store.NewKey("sk_test_due_refill_key", a.ID)
	if err := s.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if _, got, err := s.Lookup(ctx, k.Digest); err != nil || got.Balance != 100 {
		t.Errorf("Lookup balance %d, %v; want 100", got.Balance, err)
	}
	got, err := s.Account(ctx, a.ID)
	if err != nil || got.Balance != 100 || !got.RefilledAt.Equal(a.Refill.Anchor.Add(time.Hour)) {
		t.Errorf("Account = balance %d refilled at %v, %v", got.Balance, got.RefilledAt, err)
	}
}

// TestLookupCollapses checks that concurrent lookups of one uncached key
// share one lookup: one round trip in all.
func TestLookupCollapses(t *testing.T) {
	c := newClient(t)
	hook := new(roundTrips)
	c.AddHook(hook)
	s := newTestStore(t, c, nil)
	waitLive(t, s) // subscribing empties the cache
	ctx := context.Background()
	if err := s.PutAccount(ctx, store.Account{ID: "hot", Balance: 1}); err != nil {
		t.Fatal(err)
	}
	k := store.NewKey("sk_test_hot_key_0123456789", "hot")
	if err := s.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := lookupScript.Load(ctx, c).Err(); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 5; round++ {
		s.cache.drop(k.Digest)
		start := hook.n.Load()
		var wg sync.WaitGroup
		release := make(chan struct{})
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-release
				if got, _, err := s.Lookup(ctx, k.Digest); err != nil || got.AccountID != "hot" {
					t.Errorf("Lookup = %+v, %v", got, err)
				}
			}()
		}
		close(release)
		wg.Wait()
		// 1 round trip per lookup that reached Redis; goroutines that
		// arrive after the flight landed hit the cache.
		if n := hook.n.Load() - start; n != 1 {
			t.Errorf("round %d: 50 concurrent lookups made %d round trips, want 1", round, n)
		}
	}
}

// hashTag returns the part of a Redis key that Redis Cluster hashes: the
// text between the first '{' and the first '}' after it, if non-empty, else
// the whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}
