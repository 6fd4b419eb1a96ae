package store_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go402/go402/store"
	"github.com/go402/go402/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		clock := new(storetest.Clock)
		return storetest.Harness{
			Store:   store.NewMemory(&store.MemoryOptions{Clock: clock.Now}),
			Now:     clock.Now,
			Advance: clock.Advance,
		}
	})
}

// TestMemoryConformanceRealClock runs the suite the way a store whose
// clock cannot be controlled (Redis) runs it: one shared store, the real
// clock, no Advance.
func TestMemoryConformanceRealClock(t *testing.T) {
	m := store.NewMemory(nil)
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		return storetest.Harness{Store: m}
	})
}

var ctx = context.Background()

// newMemory returns a memory store on a fake clock.
func newMemory(t *testing.T) (*store.Memory, *storetest.Clock) {
	t.Helper()
	clock := new(storetest.Clock)
	return store.NewMemory(&store.MemoryOptions{Clock: clock.Now}), clock
}

// mustPut stores accounts, failing the test on error.
func mustPut(t *testing.T, m *store.Memory, accounts ...store.Account) {
	t.Helper()
	for _, a := range accounts {
		if err := m.PutAccount(ctx, a); err != nil {
			t.Fatalf("PutAccount(%q): %v", a.ID, err)
		}
	}
}

func TestMemoryPutAccountValidates(t *testing.T) {
	anchor := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		a    store.Account
	}{
		{"empty ID", store.Account{}},
		{"long ID", store.Account{ID: strings.Repeat("x", 256+1)}},
		{"unknown status", store.Account{ID: "a", Status: "paused"}},
		{"negative balance", store.Account{ID: "a", Balance: -1}},
		{"refill amount", store.Account{ID: "a", Refill: &store.Refill{Every: time.Hour, Anchor: anchor}}},
		{"refill period", store.Account{ID: "a", Refill: &store.Refill{Amount: 1, Anchor: anchor}}},
		{"refill anchor", store.Account{ID: "a", Refill: &store.Refill{Amount: 1, Every: time.Hour}}},
		{"rate", store.Account{ID: "a", RateLimit: &store.RateLimit{Rate: math.NaN(), Burst: 1}}},
		{"burst", store.Account{ID: "a", RateLimit: &store.RateLimit{Rate: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newMemory(t)
			err := m.PutAccount(ctx, tt.a)
			if err == nil || !strings.HasPrefix(err.Error(), "store: ") || strings.Count(err.Error(), "store: ") != 1 {
				t.Fatalf("PutAccount = %v, want an error starting with \"store: \", once", err)
			}
			if _, err := m.Account(ctx, tt.a.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("after refused PutAccount, Account: %v, want ErrNotFound", err)
			}
		})
	}
	m, _ := newMemory(t)
	mustPut(t, m, store.Account{ID: strings.Repeat("x", 256)})
}

// TestMemoryKeepsItsOwnCopies checks that neither the account a caller put
// nor the values Lookup and Account hand out share mutable state with the
// store.
func TestMemoryKeepsItsOwnCopies(t *testing.T) {
	m, clock := newMemory(t)
	a := store.Account{
		ID:        "acct",
		Features:  make([]string, 1, 8), // spare capacity invites appends
		Refill:    &store.Refill{Amount: 10, Every: time.Hour, Anchor: clock.Now().Add(time.Hour)},
		RateLimit: &store.RateLimit{Rate: 1, Burst: 1},
		Metadata:  map[string]string{"k": "v"},
	}
	a.Features[0] = "reports"
	mustPut(t, m, a)
	k := store.NewKey("sk_test_copies_0123456789", "acct")
	if err := m.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}

	// Change what the caller put.
	a.Features[0] = "changed"
	a.Refill.Amount = 99
	a.RateLimit.Burst = 99
	a.Metadata["k"] = "changed"

	// Change what Account returned.
	got, err := m.Account(ctx, "acct")
	if err != nil {
		t.Fatal(err)
	}
	got.Features[0] = "changed"
	got.Refill.Amount = 99
	got.Metadata["k"] = "changed"

	// Append to what Lookup returned, twice, as two requests might.
	_, la, err := m.Lookup(ctx, k.Digest)
	if err != nil {
		t.Fatal(err)
	}
	f1 := append(la.Features, "one")
	f2 := append(la.Features, "two")
	if f1[1] != "one" || f2[1] != "two" {
		t.Errorf("appends to a looked-up Features slice share memory: %q, %q", f1, f2)
	}

	got, err = m.Account(ctx, "acct")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Features) != 1 || got.Features[0] != "reports" || got.Refill.Amount != 10 ||
		got.RateLimit.Burst != 1 || got.Metadata["k"] != "v" {
		t.Errorf("store's account changed through a caller's copy: %+v", got)
	}
}

func TestMemoryPutAccountReplaces(t *testing.T) {
	m, _ := newMemory(t)
	mustPut(t, m, store.Account{ID: "acct", Plan: "free", Balance: 10})
	k := store.NewKey("sk_test_replace_0123456789", "acct")
	if err := m.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	mustPut(t, m, store.Account{ID: "acct", Plan: "pro", Balance: 500})
	_, a, err := m.Lookup(ctx, k.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if a.Plan != "pro" || a.Balance != 500 {
		t.Errorf("after replacing, Lookup account = %+v, want plan pro, balance 500", a)
	}
}

func TestMemoryAdd(t *testing.T) {
	type op func(m *store.Memory, id string, amount int64) (int64, error)
	ops := map[string]op{
		"TopUp":  func(m *store.Memory, id string, n int64) (int64, error) { return m.TopUp(ctx, id, n) },
		"Refund": func(m *store.Memory, id string, n int64) (int64, error) { return m.Refund(ctx, id, n) },
	}
	tests := []struct {
		name    string
		balance int64
		id      string
		amount  int64
		want    int64 // balance afterwards
		wantErr error
	}{
		{"adds", 5, "acct", 10, 15, nil},
		{"to the limit", math.MaxInt64 - 1, "acct", 1, math.MaxInt64, nil},
		{"overflow", math.MaxInt64 - 1, "acct", 2, math.MaxInt64 - 1, store.ErrInvalidAmount},
		{"huge overflow", math.MaxInt64, "acct", math.MaxInt64, math.MaxInt64, store.ErrInvalidAmount},
		{"zero", 5, "acct", 0, 5, store.ErrInvalidAmount},
		{"negative", 5, "acct", -3, 5, store.ErrInvalidAmount},
		{"most negative", 5, "acct", math.MinInt64, 5, store.ErrInvalidAmount},
		{"unknown account", 5, "nobody", 1, 5, store.ErrNotFound},
		{"empty account ID", 5, "", 1, 5, store.ErrNotFound},
		{"long account ID", 5, strings.Repeat("x", 256+1), 1, 5, store.ErrNotFound},
	}
	for name, add := range ops {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				m, _ := newMemory(t)
				mustPut(t, m, store.Account{ID: "acct", Balance: tt.balance})
				got, err := add(m, tt.id, tt.amount)
				if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
					t.Fatalf("%s(%d) error = %v, want %v", name, tt.amount, err, tt.wantErr)
				}
				if err == nil && got != tt.want {
					t.Errorf("%s(%d) = %d, want %d", name, tt.amount, got, tt.want)
				}
				if a, _ := m.Account(ctx, "acct"); a.Balance != tt.want {
					t.Errorf("balance afterwards = %d, want %d", a.Balance, tt.want)
				}
			})
		}
	}
}

// TestMemoryAddAppliesRefillFirst checks that a refund or top-up is not
// swallowed by a refill that was due before it.
func TestMemoryAddAppliesRefillFirst(t *testing.T) {
	m, clock := newMemory(t)
	mustPut(t, m, store.Account{
		ID:     "acct",
		Refill: &store.Refill{Amount: 100, Every: time.Hour, Anchor: clock.Now()},
	})
	if b, err := m.TopUp(ctx, "acct", 50); err != nil || b != 150 {
		t.Fatalf("TopUp(50) = %d, %v; want 150 (refill to 100 first)", b, err)
	}
	clock.Advance(time.Hour)
	if r, _ := m.Spend(ctx, "acct", 150); !r.OK || r.Balance != 0 {
		t.Fatalf("Spend(150) = %+v, want OK with 0 left", r)
	}
}

func TestMemoryInvalidAccountIDs(t *testing.T) {
	m, _ := newMemory(t)
	mustPut(t, m, store.Account{ID: "acct", Balance: 10})
	for _, id := range []string{"", "nobody", strings.Repeat("x", 256+1)} {
		if _, err := m.Spend(ctx, id, 1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Spend(%.10q): %v, want ErrNotFound", id, err)
		}
		if _, err := m.Account(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Account(%.10q): %v, want ErrNotFound", id, err)
		}
		if _, _, err := m.CreateKey(ctx, id, "sk_"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("CreateKey(%.10q): %v, want ErrNotFound", id, err)
		}
		if err := m.PutKey(ctx, store.NewKey("sk_test_0123456789", id)); err == nil {
			t.Errorf("PutKey(account %.10q) succeeded", id)
		}
	}
}

func TestMemoryLookupAppliesDueRefill(t *testing.T) {
	m, clock := newMemory(t)
	mustPut(t, m, store.Account{
		ID:     "acct",
		Refill: &store.Refill{Amount: 100, Every: time.Hour, Anchor: clock.Now().Add(time.Hour)},
	})
	k := store.NewKey("sk_test_refill_0123456789", "acct")
	if err := m.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	for _, want := range []int64{0, 100} {
		if _, a, err := m.Lookup(ctx, k.Digest); err != nil || a.Balance != want {
			t.Errorf("at %v: Lookup balance = %d, %v; want %d", clock.Now(), a.Balance, err, want)
		}
		clock.Advance(time.Hour)
	}
}

// Lookup returns what was put, by reflect.DeepEqual, with the balance and
// RefilledAt as they are now.
func TestMemoryLookupReturnsWhatWasPut(t *testing.T) {
	m, clock := newMemory(t)
	anchor := clock.Now().Add(time.Hour)
	a := store.Account{ID: "acct", Features: []string{"reports"}, Metadata: map[string]string{"k": "v"},
		Balance: 40, Refill: &store.Refill{Amount: 100, Every: time.Hour, Anchor: anchor}}
	mustPut(t, m, a)
	k := store.NewKey("sk_test_plain_0123456789", "acct")
	if err := m.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	lookup := func(want store.Account) {
		t.Helper()
		gotK, gotA, err := m.Lookup(ctx, k.Digest)
		if err != nil || !reflect.DeepEqual(gotK, k) || !reflect.DeepEqual(gotA, want) {
			t.Fatalf("Lookup = %+v, %+v, %v; want %+v, %+v", gotK, gotA, err, k, want)
		}
	}
	lookup(a)
	if _, err := m.Spend(ctx, "acct", 15); err != nil {
		t.Fatal(err)
	}
	a.Balance = 25
	lookup(a)
	clock.Advance(time.Hour) // the anchor: a refill is due
	a.Balance, a.RefilledAt = 100, anchor
	lookup(a)
}

func TestMemoryCreateKey(t *testing.T) {
	m, clock := newMemory(t)
	mustPut(t, m, store.Account{ID: "acct"})
	tests := []struct {
		prefix  string
		wantErr bool
	}{
		{"sk_live_", false},
		{"", false},
		{"pk-test.", false},
		{strings.Repeat("p", 32), false},
		{strings.Repeat("p", 33), true},
		{"sk live_", true},
		{"sk_\tlive_", true},
		{"sk_\x00_", true},
		{"clé_", true},
		{"sk_\x7f_", true},
	}
	for _, tt := range tests {
		raw, k, err := m.CreateKey(ctx, "acct", tt.prefix)
		if tt.wantErr {
			if err == nil {
				t.Errorf("CreateKey(prefix %q) succeeded", tt.prefix)
			} else if strings.Contains(err.Error(), tt.prefix) && tt.prefix != "" {
				t.Errorf("CreateKey(prefix %q): error %q quotes the prefix", tt.prefix, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("CreateKey(prefix %q): %v", tt.prefix, err)
			continue
		}
		if !strings.HasPrefix(raw, tt.prefix) || len(raw) != len(tt.prefix)+32 {
			t.Errorf("CreateKey(prefix %q) = raw key of length %d without the prefix", tt.prefix, len(raw))
		}
		want := store.Key{Digest: store.DigestOf(raw), Prefix: store.NewKey(raw, "").Prefix, AccountID: "acct", CreatedAt: clock.Now()}
		if k != want {
			t.Errorf("CreateKey(prefix %q) key = %+v, want %+v", tt.prefix, k, want)
		}
		if got, _, err := m.Lookup(ctx, store.DigestOf(raw)); err != nil || got != want {
			t.Errorf("Lookup(created key) = %+v, %v; want %+v", got, err, want)
		}
	}
}

func TestMemoryPutKeyValidates(t *testing.T) {
	m, _ := newMemory(t)
	mustPut(t, m, store.Account{ID: "acct"})
	good := store.NewKey("sk_test_validate_0123456789", "acct")
	tests := []struct {
		name    string
		edit    func(k *store.Key)
		wantErr error // nil: any error
	}{
		{"zero digest", func(k *store.Key) { k.Digest = store.Digest{} }, nil},
		{"no account", func(k *store.Key) { k.AccountID = "" }, nil},
		{"unknown account", func(k *store.Key) { k.AccountID = "nobody" }, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := good
			tt.edit(&k)
			err := m.PutKey(ctx, k)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("PutKey = %v, want an error (wrapping %v)", err, tt.wantErr)
			}
		})
	}
	if err := m.PutKey(ctx, good); err != nil {
		t.Fatalf("PutKey(valid key): %v", err)
	}
}

// A key put with a Prefix that shows more than a display prefix, such as
// one made by another system, is stored, looked up and saved with the
// Prefix cut to a display prefix.
func TestMemoryPutKeyCutsPrefix(t *testing.T) {
	m, _ := newMemory(t)
	mustPut(t, m, store.Account{ID: "acct"})
	raw := "sk_live_q8Vd_x3kA6oTn_Qw1eRt5yUi9oPa2sDf_gH7jK"
	for prefix, want := range map[string]string{
		raw[:len(raw)-1]: "sk_live_q8Vd",
		"sk live_abcdef": "sk",
		"":               "",
	} {
		k := store.Key{Digest: store.DigestOf(raw), Prefix: prefix, AccountID: "acct"}
		if err := m.PutKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		if got, _, err := m.Lookup(ctx, k.Digest); err != nil || got.Prefix != want {
			t.Errorf("Lookup(key put with Prefix %q).Prefix = %q, %v; want %q", prefix, got.Prefix, err, want)
		}
	}
	path := filepath.Join(t.TempDir(), "snapshot.json")
	if err := m.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || strings.Contains(string(b), "q8Vd_") {
		t.Errorf("the snapshot holds more of the key than its display prefix (%v):\n%s", err, b)
	}
}

func TestMemoryRevokeKey(t *testing.T) {
	m, _ := newMemory(t)
	mustPut(t, m, store.Account{ID: "acct"})
	k := store.NewKey("sk_test_revoke_0123456789", "acct")
	if err := m.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	for range 2 { // revoking twice is fine
		if err := m.RevokeKey(ctx, k.Digest); err != nil {
			t.Fatalf("RevokeKey: %v", err)
		}
		if got, _, err := m.Lookup(ctx, k.Digest); err != nil || !got.Revoked {
			t.Errorf("Lookup after RevokeKey = %+v, %v; want a revoked key", got, err)
		}
	}
	if err := m.RevokeKey(ctx, store.DigestOf("sk_unknown")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeKey(unknown) = %v, want ErrNotFound", err)
	}
}

// TestMemoryConcurrentUse mixes every operation, for the race detector.
func TestMemoryConcurrentUse(t *testing.T) {
	m, clock := newMemory(t)
	dir := t.TempDir()
	mustPut(t, m, store.Account{ID: "acct", Balance: 1000})
	k := store.NewKey("sk_test_concurrent_0123456789", "acct")
	if err := m.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	ops := []func(i int){
		func(int) { m.Lookup(ctx, k.Digest) },
		func(int) {
			if _, a, err := m.Lookup(ctx, k.Digest); err == nil {
				m.Spend(ctx, a.ID, 1)
			}
		},
		func(int) { m.Spend(ctx, "acct", 1) },
		func(int) { m.Refund(ctx, "acct", 1) },
		func(int) { m.TopUp(ctx, "acct", 1) },
		func(int) { m.Account(ctx, "acct") },
		func(int) { m.RevokeKey(ctx, k.Digest) },
		func(int) { m.PutKey(ctx, k) },
		func(int) { m.CreateKey(ctx, "acct", "sk_") },
		func(int) {
			m.PutAccount(ctx, store.Account{ID: "acct", Balance: 1000, Features: []string{"x"},
				Refill: &store.Refill{Amount: 5, Every: time.Second, Anchor: clock.Now()}})
		},
		func(int) { clock.Advance(time.Second) },
		func(int) {
			m.TakeTokens(ctx, store.Bucket{Account: "acct", Key: "default", Rate: 10, Burst: 5, Cost: 1})
		},
		func(int) {
			m.SpendWithTokens(ctx, "acct", 1, store.Bucket{Account: "acct", Key: "default", Rate: 10, Burst: 5, Cost: 1})
		},
		func(i int) {
			m.TakeTokens(ctx, store.Bucket{Key: "ip:" + strconv.Itoa(i%3), Rate: 10, Burst: 5, Cost: 1})
		},
		func(int) {
			// As Authenticate and a fused charge do: a lookup, then a spend
			// from the account, which may have been put again since.
			if _, a, err := m.Lookup(ctx, k.Digest); err == nil {
				m.SpendWithTokens(ctx, a.ID, 1,
					store.Bucket{Account: a.ID, Key: "other", Rate: 10, Burst: 5, Cost: 1})
			}
		},
		func(i int) {
			if i%10 == 0 {
				if err := m.SaveFile(dir + "/snapshot.json"); err != nil {
					t.Error(err)
				}
			}
		},
	}
	var wg sync.WaitGroup
	for i := range 50 {
		for _, op := range ops {
			wg.Add(1)
			go func() { defer wg.Done(); op(i) }()
		}
	}
	wg.Wait()
	if err := store.NewMemory(nil).LoadFile(dir + "/snapshot.json"); err != nil {
		t.Errorf("LoadFile of a snapshot saved under load: %v", err)
	}
}
