package redisstore

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go402/go402/admin"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// adminReplicas is the admin API on one replica's store and a paywalled
// route on another's, sharing one Redis and one fake clock.
type adminReplicas struct {
	t     *testing.T
	api   http.Handler // the admin API, through store a
	paid  http.Handler // GET /paid charging 1 credit, through store b
	rec   *admin.Recorder
	b     *Store
	clock interface{ Advance(time.Duration) }
}

const adminTestToken = "redis-admin-test-token-0123456789"

func newAdminReplicas(t *testing.T) *adminReplicas {
	newClient(t)
	a, b, clock := twoStores(t, redisAddr(), nil)
	waitLive(t, a, b)
	auth, _ := admin.BearerTokens(adminTestToken)
	h, err := admin.New(a, auth, &admin.Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := admin.NewRecorder(b, 0)
	pw, err := paywall.New(b, &paywall.Options{Clock: clock.Now, OnDecision: rec.Record})
	if err != nil {
		t.Fatal(err)
	}
	paid := pw.Authenticate(pw.Charge(1)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	return &adminReplicas{t: t, api: h, paid: paid, rec: rec, b: b, clock: clock}
}

// call sends an admin request and decodes a successful answer into out.
func (r *adminReplicas) call(method, path, body string, out any) int {
	r.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminTestToken)
	w := httptest.NewRecorder()
	r.api.ServeHTTP(w, req)
	if out != nil && w.Code < 300 {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			r.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return w.Code
}

// use calls the paywalled route with a key and returns the status.
func (r *adminReplicas) use(key string) int {
	req := httptest.NewRequest("GET", "/paid", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	w := httptest.NewRecorder()
	r.paid.ServeHTTP(w, req)
	return w.Code
}

// TestAdminAPIAcrossReplicas drives the admin API on one replica while
// another serves paid requests: a key issued works there, a rotation's old
// key works for the overlap and not after, a revocation reaches the other
// replica within a second (its lookup cache lasts an hour, so only the
// announcement explains it), a retried top-up credits once, and last uses
// flushed by the serving replica's Recorder show in the listing.
func TestAdminAPIAcrossReplicas(t *testing.T) {
	r := newAdminReplicas(t)
	if c := r.call("POST", "/accounts", `{"id":"acct_adm","plan":"pro","balance":100}`, nil); c != http.StatusCreated {
		t.Fatalf("create account: %d", c)
	}
	var k struct {
		Key    string
		Digest store.Digest
	}
	if c := r.call("POST", "/accounts/acct_adm/keys", `{}`, &k); c != http.StatusCreated {
		t.Fatalf("issue: %d", c)
	}
	if c := r.use(k.Key); c != http.StatusOK {
		t.Fatalf("issued key on the other replica: %d", c)
	}
	var rot struct{ New struct{ Key string } }
	if c := r.call("POST", "/accounts/acct_adm/keys/"+k.Digest.String()+"/rotate", `{"overlap_seconds":600}`, &rot); c != http.StatusCreated {
		t.Fatalf("rotate: %d", c)
	}
	within(t, time.Second, "the serving replica sees the old key's expiry", func() bool {
		old, _, err := r.b.Lookup(context.Background(), k.Digest)
		return err == nil && !old.ExpiresAt.IsZero()
	})
	if r.use(k.Key) != http.StatusOK || r.use(rot.New.Key) != http.StatusOK {
		t.Error("during the overlap, the old and the new key do not both work")
	}
	r.clock.Advance(600 * time.Second)
	if c := r.use(k.Key); c != http.StatusUnauthorized {
		t.Errorf("old key after the overlap: %d", c)
	}
	if c := r.call("POST", "/accounts/acct_adm/keys/"+store.DigestOf(rot.New.Key).String()+"/revoke", ``, nil); c != http.StatusOK {
		t.Fatalf("revoke: %d", c)
	}
	within(t, time.Second, "the revocation reaches the serving replica", func() bool {
		return r.use(rot.New.Key) == http.StatusUnauthorized
	})
	checkTopUpOnce(t, r)
	if err := r.rec.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var l struct{ Keys []store.Key }
	r.call("GET", "/accounts/acct_adm/keys", "", &l)
	for _, key := range l.Keys {
		if key.LastUsedAt.IsZero() {
			t.Errorf("key %s has no last use after a flush", key.Prefix)
		}
	}
}

// checkTopUpOnce retries a top-up with the same operation ID.
func checkTopUpOnce(t *testing.T, r *adminReplicas) {
	t.Helper()
	var before, after store.Account
	r.call("GET", "/accounts/acct_adm", "", &before)
	for range 3 {
		if c := r.call("POST", "/accounts/acct_adm/credits", `{"kind":"topup","amount":50,"operation_id":"op_redis_1"}`, nil); c != http.StatusOK {
			t.Fatalf("top-up: %d", c)
		}
	}
	r.call("GET", "/accounts/acct_adm", "", &after)
	if after.Balance != before.Balance+50 {
		t.Errorf("balance after a top-up sent three times: %d, want %d", after.Balance, before.Balance+50)
	}
}
