package pgstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go402/go402/store"
)

// seedKey stores an account and a key of it, and returns the key's digest.
func seedKey(t testing.TB, s *Store, accountID, raw string) store.Digest {
	t.Helper()
	putAccount(t, s, accountID, 100)
	k := store.NewKey(raw, accountID)
	if err := s.PutKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return k.Digest
}

// waitListening waits until s receives notifications.
func waitListening(t testing.TB, s *Store) {
	t.Helper()
	waitFor(t, "the listener", s.Listening)
}

// lookup returns the key of d as s sees it, failing the test on error.
func lookup(t testing.TB, s *Store, d store.Digest) (store.Key, store.Account) {
	t.Helper()
	k, a, err := s.Lookup(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return k, a
}

func TestRevocationReachesOtherStoreWithinASecond(t *testing.T) {
	a, b := twoStores(t, Options{LookupTTL: time.Hour})
	d := seedKey(t, a, "acct", "sk_test_revoked_elsewhere")
	waitListening(t, b)
	if k, _ := lookup(t, b, d); k.Revoked {
		t.Fatal("key revoked before RevokeKey")
	}
	if err := a.RevokeKey(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		if k, _ := lookup(t, b, d); k.Revoked {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatal("the other store still accepts the key a second after its revocation")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("revocation seen by the other store after %v", time.Since(start))
}

func TestAccountChangeReachesOtherStore(t *testing.T) {
	a, b := twoStores(t, Options{LookupTTL: time.Hour})
	d := seedKey(t, a, "acct", "sk_test_plan_change")
	waitListening(t, b)
	lookup(t, b, d)
	_, err := a.UpdateAccount(context.Background(), "acct", func(acct *store.Account) error {
		acct.Plan, acct.Status = "pro", store.StatusPastDue
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the plan change", func() bool {
		_, acct := lookup(t, b, d)
		return acct.Plan == "pro" && acct.Status == store.StatusPastDue
	})
}

func TestNewKeyNotCachedAsUnknown(t *testing.T) {
	a, b := twoStores(t, Options{NegativeTTL: time.Hour})
	putAccount(t, a, "acct", 1)
	waitListening(t, b)
	k := store.NewKey("sk_test_new_key", "acct")
	if _, _, err := b.Lookup(context.Background(), k.Digest); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lookup before PutKey: %v, want ErrNotFound", err)
	}
	if err := a.PutKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new key", func() bool {
		_, _, err := b.Lookup(context.Background(), k.Digest)
		return err == nil
	})
}

// TestListenerReconnects cuts the listening connection and keeps the
// database unreachable while a key is revoked: meanwhile the cached lookup
// stands (for up to LookupTTL), and once the listener is back the cache is
// emptied, so the revocation missed is seen at once.
func TestListenerReconnects(t *testing.T) {
	p := newProxy(t)
	direct := newPool(t, nil)
	schema := newSchema(t, direct)
	writer := newStore(t, direct, Options{Schema: schema})
	d := seedKey(t, writer, "acct", "sk_test_listener") // before s listens: no notification pending
	s := newStore(t, p.pool(t), Options{Schema: schema, LookupTTL: time.Hour})
	waitListening(t, s)
	lookup(t, s, d)

	p.setRefused(true)
	p.cut()
	waitFor(t, "the listener to notice", func() bool { return !s.Listening() })
	if err := writer.RevokeKey(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if k, _ := lookup(t, s, d); k.Revoked {
		t.Fatal("revocation seen while disconnected: the test cannot tell the cache was emptied")
	}
	p.setRefused(false)
	waitListening(t, s)
	var k store.Key
	waitFor(t, "a lookup on a new connection", func() bool { // the pool's old ones are broken
		var err error
		k, _, err = s.Lookup(context.Background(), d)
		return err == nil
	})
	if !k.Revoked {
		t.Error("after reconnecting, the store still has the revoked key cached")
	}
	if n := s.listener.sessions.Load(); n != 2 {
		t.Errorf("%d listening sessions, want 2", n)
	}
}

// TestListenerTerminated terminates the listener's backend on the server,
// as an administrator or a failover would, and checks that the store
// listens again and hears the next change.
func TestListenerTerminated(t *testing.T) {
	a, b := twoStores(t, Options{LookupTTL: time.Hour})
	d := seedKey(t, a, "acct", "sk_test_terminated")
	waitListening(t, b)
	pid := b.listener.pid.Load()
	if _, err := a.pool.Exec(context.Background(), "SELECT pg_terminate_backend($1)", int32(pid)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new listening session", func() bool { return b.listener.sessions.Load() == 2 && b.Listening() })
	lookup(t, b, d)
	if err := a.RevokeKey(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the revocation", func() bool {
		k, _ := lookup(t, b, d)
		return k.Revoked
	})
}
