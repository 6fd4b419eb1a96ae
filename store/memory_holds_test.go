package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/go402/go402/store"
)

func TestMemorySnapshotReleasesHolds(t *testing.T) {
	ctx := context.Background()
	m := store.NewMemory(nil)
	if err := m.PutAccount(ctx, store.Account{ID: "a", Balance: 100}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Hold(ctx, "a", 40, time.Hour); err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/snap.json"
	if err := m.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	restored := store.NewMemory(nil)
	if err := restored.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if a, _ := restored.Account(ctx, "a"); a.Balance != 100 {
		t.Errorf("restored balance %d, want 100 (the hold released)", a.Balance)
	}
	if a, _ := m.Account(ctx, "a"); a.Balance != 60 {
		t.Errorf("live balance %d, want 60 (still held)", a.Balance)
	}
}
