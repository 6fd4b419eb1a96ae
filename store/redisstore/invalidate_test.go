package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/go402/go402/store"
	"github.com/go402/go402/store/storetest"
	"github.com/redis/go-redis/v9"
)

// waitLive waits until every store has subscribed to the announcements.
func waitLive(t testing.TB, stores ...*Store) {
	t.Helper()
	for _, s := range stores {
		within(t, 10*time.Second, "the store subscribes", s.subLive.Load)
	}
}

// within fails the test unless cond becomes true within d of real time. It
// waits for Redis to deliver something, never for time to pass.
func within(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(time.Millisecond)
	}
}

// twoStores returns two stores (two replicas) on their own clients of the
// Redis at addr, sharing a clock that stands still unless the test moves it,
// and a LookupTTL of an hour, the second store's client made by opts.
func twoStores(t *testing.T, addr string, opts *redis.Options) (a, b *Store, clock *storetest.Clock) {
	t.Helper()
	clock = new(storetest.Clock)
	ca := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { ca.Close() })
	o := redis.Options{Addr: addr, ContextTimeoutEnabled: true}
	if opts != nil {
		o = *opts
	}
	cb := redis.NewClient(&o)
	t.Cleanup(func() { cb.Close() })
	a = newTestStore(t, ca, &Options{Clock: clock.Now, LookupTTL: time.Hour})
	b = mustNew(t, cb, &Options{Prefix: a.prefix, Clock: clock.Now, LookupTTL: time.Hour, Timeout: testTimeout})
	return a, b, clock
}

// seedKey stores an account with a plan and a key for it through s and
// returns the key's digest.
func seedKey(t *testing.T, s *Store, id string) store.Digest {
	t.Helper()
	ctx := context.Background()
	if err := s.PutAccount(ctx, store.Account{ID: id, Plan: "free", Balance: 10}); err != nil {
		t.Fatal(err)
	}
	k := store.NewKey("sk_test_"+id+"_0123456789", id)
	if err := s.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	return k.Digest
}

// TestInvalidationAcrossStores checks that a key revoked and an account
// changed through one store are seen by another within a second, with the
// clock standing still and a LookupTTL of an hour, so only the
// announcement can explain it.
func TestInvalidationAcrossStores(t *testing.T) {
	newClient(t)
	a, b, _ := twoStores(t, redisAddr(), nil)
	waitLive(t, a, b)
	ctx := context.Background()
	d := seedKey(t, a, "inval")
	if _, acct, err := b.Lookup(ctx, d); err != nil || acct.Plan != "free" {
		t.Fatalf("b.Lookup = %+v, %v", acct, err)
	}
	if err := a.PutAccount(ctx, store.Account{ID: "inval", Plan: "pro", Balance: 10}); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "the other store sees the new plan", func() bool {
		_, acct, err := b.Lookup(ctx, d)
		return err == nil && acct.Plan == "pro"
	})
	if err := a.RevokeKey(ctx, d); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "the other store sees the revocation", func() bool {
		k, _, err := b.Lookup(ctx, d)
		return err == nil && k.Revoked
	})
}

// TestInvalidationResubscribes kills the stores' subscriptions on a
// test-owned Redis: they subscribe again by themselves, and a revocation
// made afterwards is seen within a second.
func TestInvalidationResubscribes(t *testing.T) {
	srv := startServer(t, t.Cleanup)
	a, b, _ := twoStores(t, srv.addr(), nil)
	waitLive(t, a, b)
	ctx := context.Background()
	d := seedKey(t, a, "resub")
	if k, _, err := b.Lookup(ctx, d); err != nil || k.Revoked {
		t.Fatalf("b.Lookup = %+v, %v", k, err)
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer admin.Close()
	if err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "the stores subscribe again", func() bool {
		return a.subCount.Load() >= 2 && b.subCount.Load() >= 2 && a.subLive.Load() && b.subLive.Load()
	})
	if err := a.RevokeKey(ctx, d); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "the other store sees the revocation", func() bool {
		k, _, err := b.Lookup(ctx, d)
		return err == nil && k.Revoked
	})
}

// TestInvalidationFallsBackToTTL runs the second store as a Redis user who
// may not subscribe, on a test-owned Redis: it never hears the
// announcements, so a revocation reaches it only when its cached lookup
// expires, LookupTTL after it was made.
func TestInvalidationFallsBackToTTL(t *testing.T) {
	srv := startServer(t, t.Cleanup)
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer admin.Close()
	err := admin.Do(ctx, "ACL", "SETUSER", "nosub", "on", "nopass", "~*", "resetchannels", "+@all").Err()
	if err != nil {
		t.Fatal(err)
	}
	a, b, clock := twoStores(t, srv.addr(), &redis.Options{
		Addr: srv.addr(), Username: "nosub", Password: "any", ContextTimeoutEnabled: true,
	})
	waitLive(t, a)
	d := seedKey(t, a, "fallback")
	if k, _, err := b.Lookup(ctx, d); err != nil || k.Revoked {
		t.Fatalf("b.Lookup = %+v, %v", k, err)
	}
	if err := a.RevokeKey(ctx, d); err != nil {
		t.Fatal(err)
	}
	if b.subLive.Load() {
		t.Fatal("the store that may not subscribe is subscribed")
	}
	if k, _, _ := b.Lookup(ctx, d); k.Revoked {
		t.Fatal("the unsubscribed store saw the revocation before its LookupTTL")
	}
	clock.Advance(time.Hour)
	if k, _, err := b.Lookup(ctx, d); err != nil || !k.Revoked {
		t.Errorf("after LookupTTL: %+v, %v; want the key revoked", k, err)
	}
}

// TestCloseDoesNotWaitForTheSubscription checks that Close ends a
// subscription blocked in a read at once, not when the read's ping
// interval runs out.
func TestCloseDoesNotWaitForTheSubscription(t *testing.T) {
	c := newClient(t)
	s, err := New(c, &Options{Prefix: testPrefix(t, c), Timeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	waitLive(t, s)
	start := time.Now()
	s.Close()
	if d := time.Since(start); d >= pingEvery/2 {
		t.Fatalf("Close took %v; the subscription's read waits up to %v", d, pingEvery)
	}
}
