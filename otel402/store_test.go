package otel402_test

import (
	"context"
	"errors"
	"testing"

	"github.com/go402/go402/store"
)

func TestStoreKeepsCapabilities(t *testing.T) {
	rec := newRecorder(t, nil)
	mem := rec.Store(store.NewMemory(nil))
	if _, ok := mem.(store.Refunder); !ok {
		t.Error("the wrapped Memory is not a Refunder")
	}
	if _, ok := mem.(store.BucketSpender); !ok {
		t.Error("the wrapped Memory is not a BucketSpender")
	}
	if _, ok := mem.(store.Admin); !ok {
		t.Error("the wrapped Memory is not an Admin")
	}
	if _, ok := mem.(store.Ledger); ok {
		t.Error("the wrapped Memory is a Ledger; Memory is not")
	}
	cb, err := store.NewCallback(store.Callbacks{
		Lookup: func(context.Context, store.Digest) (store.Key, store.Account, error) {
			return store.Key{}, store.Account{}, nil
		},
		Spend: func(context.Context, string, int64) (store.SpendResult, error) { return store.SpendResult{}, nil },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rec.Store(cb).(store.Refunder); ok {
		t.Error("a Callback without Refund became a Refunder")
	}
}

func TestStoreErrors(t *testing.T) {
	rec := newRecorder(t, nil)
	down := errors.New("dial tcp 10.0.0.7:6379: connection refused")
	cb, err := store.NewCallback(store.Callbacks{
		Lookup: func(context.Context, store.Digest) (store.Key, store.Account, error) {
			return store.Key{}, store.Account{}, down
		},
		Spend: func(ctx context.Context, id string, _ int64) (store.SpendResult, error) {
			if id == "gone" {
				return store.SpendResult{}, store.ErrNotFound
			}
			return store.SpendResult{}, ctx.Err()
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := rec.Store(cb)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Lookup(ctx, store.DigestOf("sk_x")); !errors.Is(err, down) {
		t.Fatalf("Lookup error %v, want the store's", err)
	}
	_, _ = s.Spend(ctx, "acct", 1)
	_, _ = s.Spend(ctx, "gone", 1)
	got := rec.collect(t)
	for _, c := range []struct {
		name  string
		attrs map[string]string
		want  float64
	}{
		{"go402.store.errors", map[string]string{"go402.store.operation": "lookup", "error.type": "_OTHER"}, 1},
		{"go402.store.errors", map[string]string{"go402.store.operation": "spend", "error.type": "canceled"}, 1},
		{"go402.store.errors", map[string]string{"error.type": "not_found"}, 0},
		{"go402.store.duration", map[string]string{"go402.store.operation": "spend", "error.type": "not_found"}, 1},
		{"go402.store.duration", map[string]string{"go402.store.operation": "spend"}, 2},
	} {
		if v := sum(got[c.name], c.attrs); v != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.attrs, v, c.want)
		}
	}
}

// TestStoreCreateAccountExists checks that CreateAccount goes through the
// wrapper, and that an account created twice is timed with error.type
// "exists" but not counted as a store error.
func TestStoreCreateAccountExists(t *testing.T) {
	rec := newRecorder(t, nil)
	ad := rec.Store(store.NewMemory(nil)).(store.Admin)
	ctx := context.Background()
	if err := ad.CreateAccount(ctx, store.Account{ID: "acct_1"}); err != nil {
		t.Fatal(err)
	}
	if err := ad.CreateAccount(ctx, store.Account{ID: "acct_1"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second CreateAccount: %v, want ErrExists", err)
	}
	got := rec.collect(t)
	for _, c := range []struct {
		name  string
		attrs map[string]string
		want  float64
	}{
		{"go402.store.duration", map[string]string{"go402.store.operation": "create_account"}, 2},
		{"go402.store.duration", map[string]string{"go402.store.operation": "create_account", "error.type": "exists"}, 1},
		{"go402.store.errors", map[string]string{"go402.store.operation": "create_account"}, 0},
	} {
		if v := sum(got[c.name], c.attrs); v != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.attrs, v, c.want)
		}
	}
}
