package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go402/go402/store"
)

func TestMemoryUpdateAccountLosesNoSpend(t *testing.T) {
	ctx := context.Background()
	m := store.NewMemory(nil)
	if err := m.PutAccount(ctx, store.Account{ID: "a", Balance: 10_000, Plan: "free"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				if _, err := m.Spend(ctx, "a", 1); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := range 200 {
		if _, err := m.UpdateAccount(ctx, "a", func(a *store.Account) error {
			a.Plan = fmt.Sprint("plan", i)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	a, err := m.Account(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if a.Balance != 10_000-4*500 || a.Plan != "plan199" {
		t.Fatalf("balance %d plan %q, want %d plan199", a.Balance, a.Plan, 10_000-4*500)
	}
}

func TestMemoryUpdateAccountRefuses(t *testing.T) {
	ctx := context.Background()
	m := store.NewMemory(nil)
	if err := m.PutAccount(ctx, store.Account{ID: "a", Balance: 5}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	for name, fn := range map[string]func(*store.Account) error{
		"fn error":         func(a *store.Account) error { a.Balance = 99; return boom },
		"ID changed":       func(a *store.Account) error { a.ID = "b"; return nil },
		"invalid result":   func(a *store.Account) error { a.Balance = -1; return nil },
		"unknown status":   func(a *store.Account) error { a.Status = "weird"; return nil },
		"features aliased": func(a *store.Account) error { a.Features = append(a.Features, "x"); return boom },
	} {
		if _, err := m.UpdateAccount(ctx, "a", fn); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := m.UpdateAccount(ctx, "nope", func(*store.Account) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown account: %v, want ErrNotFound", err)
	}
	if a, _ := m.Account(ctx, "a"); a.Balance != 5 || a.Status != "" || len(a.Features) != 0 {
		t.Errorf("after refused updates: %+v, want unchanged", a)
	}
}

func TestMemoryAccountsPages(t *testing.T) {
	ctx := context.Background()
	m := store.NewMemory(nil)
	for i := range 25 {
		if err := m.PutAccount(ctx, store.Account{ID: fmt.Sprintf("acct-%02d", 24-i), Balance: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	after := ""
	for {
		page, err := m.Accounts(ctx, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, a := range page {
			got = append(got, a.ID)
		}
		after = page[len(page)-1].ID
	}
	if len(got) != 25 || got[0] != "acct-00" || got[24] != "acct-24" {
		t.Fatalf("listed %v", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1] >= got[i] {
			t.Fatalf("not in order: %v", got)
		}
	}
}

func TestMemoryKeys(t *testing.T) {
	ctx := context.Background()
	m := store.NewMemory(nil)
	for _, id := range []string{"a", "b"} {
		if err := m.PutAccount(ctx, store.Account{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	_, k1, _ := m.CreateKey(ctx, "a", "sk_")
	_, k2, _ := m.CreateKey(ctx, "a", "sk_")
	if _, _, err := m.CreateKey(ctx, "b", "sk_"); err != nil {
		t.Fatal(err)
	}
	if err := m.RevokeKey(ctx, k1.Digest); err != nil {
		t.Fatal(err)
	}
	keys, err := m.Keys(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("%d keys, want 2: %+v", len(keys), keys)
	}
	seen := map[store.Digest]bool{}
	for _, k := range keys {
		seen[k.Digest] = k.Revoked
	}
	if revoked, ok := seen[k1.Digest]; !ok || !revoked {
		t.Errorf("revoked key missing or not revoked: %+v", keys)
	}
	if revoked, ok := seen[k2.Digest]; !ok || revoked {
		t.Errorf("live key missing or revoked: %+v", keys)
	}
	if _, err := m.Keys(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown account: %v", err)
	}
}

func TestMemoryTouchKeys(t *testing.T) {
	ctx := context.Background()
	m := store.NewMemory(nil)
	if err := m.PutAccount(ctx, store.Account{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	raw, k, _ := m.CreateKey(ctx, "a", "sk_")
	t1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := m.TouchKeys(ctx, map[store.Digest]time.Time{k.Digest: t1, store.DigestOf("unknown"): t1}); err != nil {
		t.Fatal(err)
	}
	if err := m.TouchKeys(ctx, map[store.Digest]time.Time{k.Digest: t1.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := m.RevokeKey(ctx, k.Digest); err != nil {
		t.Fatal(err)
	}
	if err := m.TouchKeys(ctx, map[store.Digest]time.Time{k.Digest: t1.Add(-2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	got, _, err := m.Lookup(ctx, store.DigestOf(raw))
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastUsedAt.Equal(t1) || !got.Revoked {
		t.Errorf("LastUsedAt %v revoked %v, want %v and revoked", got.LastUsedAt, got.Revoked, t1)
	}
}
