package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// snapshotClock is a settable clock for the snapshot tests.
type snapshotClock struct{ t time.Time }

func (c *snapshotClock) now() time.Time { return c.t }

// seededMemory returns a memory store holding accounts and keys with every
// field set, one account refilled by a spend so RefilledAt is the store's.
func seededMemory(t *testing.T) (*Memory, *snapshotClock) {
	t.Helper()
	ctx := context.Background()
	clock := &snapshotClock{t: time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)}
	m := NewMemory(&MemoryOptions{Clock: clock.now})
	accounts := []Account{
		{
			ID:        "acct_pro",
			Plan:      "pro",
			Status:    StatusTrialing,
			PeriodEnd: clock.t.Add(30 * 24 * time.Hour),
			Features:  []string{"reports", "export"},
			Balance:   250,
			Refill: &Refill{Amount: 1000, Every: 720 * time.Hour,
				Anchor: time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600))},
			RateLimit: &RateLimit{Rate: 2.5, Burst: 10},
			Metadata:  map[string]string{"customer": "cus_1"},
		},
		{ID: "acct_overdue", Plan: "pro", Status: StatusPastDue, GraceUntil: clock.t.Add(72 * time.Hour),
			Lapse: LapseInsufficientFunds, PaymentURL: "https://billing.example.com/p/login/x"},
		{ID: "acct_free", Plan: "free"},
	}
	for _, a := range accounts {
		if err := m.PutAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := m.Spend(ctx, "acct_pro", 1); err != nil || !r.OK {
		t.Fatalf("Spend = %+v, %v", r, err)
	}
	keys := []Key{
		NewKey("sk_test_snapshot_live_0123456789", "acct_pro"),
		{Digest: DigestOf("revoked"), Prefix: "sk_test_", AccountID: "acct_pro", Revoked: true},
		{Digest: DigestOf("expiring"), Prefix: "sk_test_", AccountID: "acct_free",
			ExpiresAt: clock.t.Add(time.Hour), CreatedAt: clock.t.Add(-time.Hour)},
	}
	for _, k := range keys {
		if err := m.PutKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	return m, clock
}

func TestSnapshotRoundTrip(t *testing.T) {
	m, clock := seededMemory(t)
	path := filepath.Join(t.TempDir(), "store.json")
	if err := m.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("snapshot file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	if bytes.Contains(saved, []byte("sk_test_snapshot_live_0123456789")) {
		t.Errorf("snapshot contains a raw key")
	}

	restored := NewMemory(&MemoryOptions{Clock: clock.now})
	if err := restored.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	want, got := m.snapshot(), restored.snapshot()
	if len(got.Accounts) != 3 || len(got.Keys) != 3 {
		t.Fatalf("restored %d accounts and %d keys, want 3 and 3", len(got.Accounts), len(got.Keys))
	}
	for i := range want.Accounts {
		w, g := want.Accounts[i], got.Accounts[i]
		// Times come back equal but not ==: the zone is a fixed offset.
		if !g.PeriodEnd.Equal(w.PeriodEnd) || !g.RefilledAt.Equal(w.RefilledAt) || !g.GraceUntil.Equal(w.GraceUntil) ||
			(w.Refill != nil && !g.Refill.Anchor.Equal(w.Refill.Anchor)) {
			t.Errorf("account %q: times differ: got %+v, want %+v", w.ID, g, w)
		}
		g.PeriodEnd, g.RefilledAt, w.PeriodEnd, w.RefilledAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		g.GraceUntil, w.GraceUntil = time.Time{}, time.Time{}
		if w.Refill != nil {
			gr, wr := *g.Refill, *w.Refill
			gr.Anchor, wr.Anchor = time.Time{}, time.Time{}
			g.Refill, w.Refill = &gr, &wr
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("account differs:\n got %+v\nwant %+v", g, w)
		}
	}
	for i := range want.Keys {
		w, g := want.Keys[i], got.Keys[i]
		if !g.ExpiresAt.Equal(w.ExpiresAt) || !g.CreatedAt.Equal(w.CreatedAt) {
			t.Errorf("key %v: times differ: got %+v, want %+v", w.Digest, g, w)
		}
		g.ExpiresAt, g.CreatedAt, w.ExpiresAt, w.CreatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if g != w {
			t.Errorf("key differs:\n got %+v\nwant %+v", g, w)
		}
	}
	if pro := got.Accounts[slicesIndex(got.Accounts, "acct_pro")]; pro.RefilledAt.IsZero() || pro.Balance != 999 {
		t.Errorf("acct_pro restored with balance %d, refilled at %v; want 999 and the last boundary", pro.Balance, pro.RefilledAt)
	}

	// The restored store behaves as the original: the refill already
	// applied is not applied again.
	if r, _ := restored.Spend(context.Background(), "acct_pro", 0); r.Balance != 999 {
		t.Errorf("restored Spend(0) balance = %d, want 999", r.Balance)
	}
	// Saving the restored store writes the same file.
	path2 := filepath.Join(t.TempDir(), "again.json")
	if err := restored.SaveFile(path2); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path2); !bytes.Equal(again, saved) {
		t.Errorf("saving the restored store wrote a different file:\n%s\nwant\n%s", again, saved)
	}
}

// slicesIndex returns the index of the account with the given ID.
func slicesIndex(accounts []Account, id string) int {
	for i, a := range accounts {
		if a.ID == id {
			return i
		}
	}
	return -1
}

func TestSnapshotFailedWriteKeepsOldFile(t *testing.T) {
	m, _ := seededMemory(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "store.json")
	if err := m.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	errFull := errors.New("disk full")
	err = writeFileAtomic(path, func(w io.Writer) error {
		w.Write(old[:len(old)/2])
		return errFull
	})
	if !errors.Is(err, errFull) {
		t.Fatalf("writeFileAtomic = %v, want %v", err, errFull)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, old) {
		t.Errorf("failed write changed the file:\n%s", now)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %q after a failed write, want only store.json", names)
	}

	// Renaming over a directory fails after the data was written.
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := m.SaveFile(filepath.Join(dir, "sub")); err == nil {
		t.Errorf("SaveFile over a directory succeeded")
	}
	if err := m.SaveFile(filepath.Join(dir, "missing", "store.json")); err == nil {
		t.Errorf("SaveFile into a missing directory succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("directory holds %d entries after failed saves, want 2", len(entries))
	}
}

func TestLoadFileRejectsBadFiles(t *testing.T) {
	const good = `{"version":1,"accounts":[{"id":"a","balance":5}],"keys":[]}`
	digest := DigestOf("k").String()
	tests := []struct {
		name    string
		content string // "" means: no file
		want    string // in the error
	}{
		{"missing", "", "no such file"},
		{"not JSON", "{", "unexpected EOF"},
		{"unknown field", `{"version":1,"accounts":[],"keys":[],"extra":1}`, "unknown field"},
		{"version", `{"version":2,"accounts":[],"keys":[]}`, "unsupported version 2"},
		{"invalid account", `{"version":1,"accounts":[{"id":"","balance":1}],"keys":[]}`, "account ID must not be empty"},
		{"negative balance", `{"version":1,"accounts":[{"id":"b","balance":-1}],"keys":[]}`, "negative balance"},
		{"bad digest", `{"version":1,"accounts":[{"id":"b","balance":1}],"keys":[{"digest":"zz","prefix":"","account_id":"b"}]}`, "digest"},
		{"key without account", `{"version":1,"accounts":[],"keys":[{"digest":"` + digest + `","prefix":"sk_","account_id":"nobody"}]}`, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMemory(nil)
			path := filepath.Join(t.TempDir(), "good.json")
			if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := m.LoadFile(path); err != nil {
				t.Fatal(err)
			}
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				path += ".missing"
			}
			err := m.LoadFile(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "store: ") {
				t.Fatalf("LoadFile = %v, want an error containing %q", err, tt.want)
			}
			if tt.content == "" && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("LoadFile(missing) = %v, want one wrapping fs.ErrNotExist", err)
			}
			if a, err := m.Account(context.Background(), "a"); err != nil || a.Balance != 5 {
				t.Errorf("after a bad file the store changed: %+v, %v", a, err)
			}
			if s := m.snapshot(); len(s.Accounts) != 1 || len(s.Keys) != 0 {
				t.Errorf("after a bad file the store holds %d accounts and %d keys", len(s.Accounts), len(s.Keys))
			}
		})
	}
}

// TestLoadFileMerges checks that loading adds to and replaces in a store
// that already holds data, and that keys may refer to accounts already in
// the store.
func TestLoadFileMerges(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(nil)
	if err := m.PutAccount(ctx, Account{ID: "kept", Balance: 1}); err != nil {
		t.Fatal(err)
	}
	if err := m.PutAccount(ctx, Account{ID: "replaced", Balance: 2}); err != nil {
		t.Fatal(err)
	}
	k := NewKey("sk_test_merge_0123456789", "kept")
	content := `{"version":1,"accounts":[{"id":"replaced","balance":20},{"id":"new","balance":30}],
		"keys":[{"digest":"` + k.Digest.String() + `","prefix":"` + k.Prefix + `","account_id":"kept"}]}`
	path := filepath.Join(t.TempDir(), "merge.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]int64{"kept": 1, "replaced": 20, "new": 30} {
		if a, err := m.Account(ctx, id); err != nil || a.Balance != want {
			t.Errorf("Account(%q) = balance %d, %v; want %d", id, a.Balance, err, want)
		}
	}
	if got, _, err := m.Lookup(ctx, k.Digest); err != nil || got != k {
		t.Errorf("Lookup(loaded key) = %+v, %v; want %+v", got, err, k)
	}
}

// leaveTemps fills dir with what crashed saves of dir/store.json leave (its
// temporary files, last written an hour ago), what a save in progress
// writes (one written now), and files of other kinds and snapshots, and
// returns the names that a cleanup must remove and those it must keep.
func leaveTemps(t *testing.T, dir string) (stale, keep []string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	for _, pattern := range []string{".store.json.tmp-*", ".store.json.tmp-*", ".store.json.tmp-*", ".other.json.tmp-*"} {
		f, err := os.CreateTemp(dir, pattern) // as a save would
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(`{"version":1,"accou`) // cut off by the crash
		f.Close()
		if err := os.Chtimes(f.Name(), old, old); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(filepath.Base(f.Name()), ".store.json.tmp-") {
			stale = append(stale, filepath.Base(f.Name()))
		} else {
			keep = append(keep, filepath.Base(f.Name()))
		}
	}
	inFlight, err := os.CreateTemp(dir, ".store.json.tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	inFlight.Close()
	keep = append(keep, filepath.Base(inFlight.Name()))
	for _, name := range []string{".store.json.tmp-notdigits", "store.json.tmp-123", ".store.json.tmp-"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(filepath.Join(dir, name), old, old)
		keep = append(keep, name)
	}
	if err := os.Mkdir(filepath.Join(dir, ".store.json.tmp-42"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(dir, ".store.json.tmp-42"), old, old)
	return stale, append(keep, ".store.json.tmp-42")
}

// SaveFile and LoadFile remove the temporary files crashed saves of the
// same snapshot left, and nothing else: not a save in progress, not other
// snapshots' files, not files only named alike.
func TestSnapshotRemovesStaleTemps(t *testing.T) {
	m, _ := seededMemory(t)
	for _, op := range []string{"SaveFile", "LoadFile"} {
		t.Run(op, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "store.json")
			if err := m.SaveFile(path); err != nil {
				t.Fatal(err)
			}
			stale, keep := leaveTemps(t, dir)
			var err error
			if op == "SaveFile" {
				err = m.SaveFile(path)
			} else {
				err = m.LoadFile(path)
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range stale {
				if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s left the stale temporary file %s (%v)", op, name, err)
				}
			}
			for _, name := range append(keep, "store.json") {
				if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
					t.Errorf("%s removed %s: %v", op, name, err)
				}
			}
		})
	}
}

// A snapshot holding a key whose prefix shows most of the key, as files
// saved by other versions may, loads with the prefix cut to a display
// prefix, so it is neither looked up nor saved again whole.
func TestLoadFileCutsLongPrefixes(t *testing.T) {
	raw := "sk_live_q8Vd_x3kA6oTn_Qw1eRt5yUi9oPa2sDf_gH7jK"
	d := DigestOf(raw)
	path := filepath.Join(t.TempDir(), "store.json")
	file := `{"version":1,"accounts":[{"id":"a","balance":5}],"keys":[{"digest":"` + d.String() +
		`","prefix":"` + raw[:len(raw)-1] + `","account_id":"a"}]}`
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	m := NewMemory(nil)
	if err := m.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if k, _, err := m.Lookup(context.Background(), d); err != nil || k.Prefix != "sk_live_q8Vd" {
		t.Errorf("Lookup after LoadFile = %+v, %v; want Prefix sk_live_q8Vd", k, err)
	}
	if err := m.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), "q8Vd_") {
		t.Errorf("saved again, the snapshot holds the long prefix:\n%s", b)
	}
}
