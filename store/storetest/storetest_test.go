package storetest_test

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go402/go402/store"
	"github.com/go402/go402/store/storetest"
)

// brokenStore is a memory store with one deliberate defect, to show that
// the suite notices it.
type brokenStore struct {
	*store.Memory
	defect string
	now    func() time.Time

	mu        sync.Mutex
	handedOut map[string]string // the Metadata of the last account Lookup returned
}

func (b *brokenStore) Lookup(ctx context.Context, d store.Digest) (store.Key, store.Account, error) {
	k, a, err := b.Memory.Lookup(ctx, d)
	switch {
	case err != nil:
	case b.defect == "hides revoked keys" && k.Revoked,
		b.defect == "hides expired keys" && !k.ExpiresAt.IsZero() && !b.now().Before(k.ExpiresAt):
		return store.Key{}, store.Account{}, store.ErrNotFound
	case b.defect == "loses metadata":
		a.Metadata = nil
	case b.defect == "updates returned values in place":
		b.mu.Lock()
		b.handedOut = maps.Clone(a.Metadata)
		a.Metadata = b.handedOut
		b.mu.Unlock()
	}
	return k, a, err
}

func (b *brokenStore) Spend(ctx context.Context, id string, cost int64) (store.SpendResult, error) {
	switch {
	case b.defect == "refunds negative costs" && cost < 0:
		bal, err := b.Memory.Refund(ctx, id, -cost)
		return store.SpendResult{OK: true, Balance: bal}, err
	case b.defect == "refuses zero costs on empty balances" && cost == 0:
		r, err := b.Memory.Spend(ctx, id, 0)
		r.OK = r.Balance > 0
		return r, err
	}
	r, err := b.Memory.Spend(ctx, id, cost)
	if b.defect == "updates returned values in place" {
		b.mu.Lock()
		if b.handedOut != nil {
			b.handedOut["balance"] = strconv.FormatInt(r.Balance, 10)
		}
		b.mu.Unlock()
	}
	if b.defect == "omits NextRefill" {
		r.NextRefill = time.Time{}
	}
	return r, err
}

// defects maps each defect to a subtest that must fail because of it.
var defects = map[string]string{
	"hides revoked keys":                   "Lookup/RevokedKey",
	"hides expired keys":                   "Lookup/ExpiredKey",
	"loses metadata":                       "Lookup/KnownKey",
	"refunds negative costs":               "Spend/NegativeCost",
	"refuses zero costs on empty balances": "Spend/Zero",
	"omits NextRefill":                     "Refill/FirstBoundary",
	"updates returned values in place":     "Values/NeverModified",
}

// TestSuiteFindsDefects runs the suite, in a child process, against stores
// with known defects and checks that it fails where it should.
func TestSuiteFindsDefects(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test binary once per defect")
	}
	for defect, subtest := range defects {
		t.Run(strings.ReplaceAll(defect, " ", "_"), func(t *testing.T) {
			// Only the subtest that must fail runs: a defect may also break
			// the process in another (a concurrent map write is fatal).
			run := "^TestBrokenStore$/^" + strings.ReplaceAll(subtest, "/", "$/^") + "$"
			cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.v")
			cmd.Env = append(os.Environ(), "STORETEST_DEFECT="+defect)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store that %s", defect)
			}
			if want := "--- FAIL: TestBrokenStore/" + subtest + " "; !strings.Contains(string(out), want) {
				t.Errorf("the suite did not fail %s for a store that %s:\n%s", subtest, defect, out)
			}
		})
	}
}

// TestBrokenStore runs the suite against the store with the defect named by
// $STORETEST_DEFECT; TestSuiteFindsDefects expects it to fail.
func TestBrokenStore(t *testing.T) {
	defect := os.Getenv("STORETEST_DEFECT")
	if defect == "" {
		t.Skip("run by TestSuiteFindsDefects")
	}
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		clock := new(storetest.Clock)
		m := store.NewMemory(&store.MemoryOptions{Clock: clock.Now})
		return storetest.Harness{
			Store:   &brokenStore{Memory: m, defect: defect, now: clock.Now},
			Now:     clock.Now,
			Advance: clock.Advance,
		}
	})
}
