package otel402_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/go402/go402/store"
)

// capability is an optional capability of a go402 store: an interface,
// and whether a store has it (by type assertion).
type capability struct {
	name string
	typ  reflect.Type
	has  func(store.Store) bool
}

func capabilityOf[T any]() capability {
	typ := reflect.TypeFor[T]()
	return capability{typ.Name(), typ, func(s store.Store) bool {
		_, ok := s.(T)
		return ok
	}}
}

// capabilitiesOf returns the bits of the capabilities s has.
func capabilitiesOf(s store.Store) (mask int) {
	for i, c := range capabilities {
		if c.has(s) {
			mask |= 1 << i
		}
	}
	return mask
}

// bitOf returns the bit of the capability named name; zero for "", the Store.
func bitOf(t *testing.T, name string) int {
	for i, c := range capabilities {
		if c.name == name {
			return 1 << i
		}
	}
	if name != "" {
		t.Fatalf("no capability %q", name)
	}
	return 0
}

// storeCall is a call of a store method: of the capability named (the
// Store if ""), timed as op (not at all if ""), with the arguments args
// after its context, answered with results and an error.
type storeCall struct {
	capability, method, op string
	args, results          []any
	call                   func(ctx context.Context, s store.Store) ([]any, error)
}

// storeCalls are the calls of every method of every capability, with what
// a fake store answers.
var storeCalls = []storeCall{
	{"", "Lookup", "lookup", []any{fakeKey.Digest}, []any{fakeKey, fakeAccount}, func(ctx context.Context, s store.Store) ([]any, error) {
		k, a, err := s.Lookup(ctx, fakeKey.Digest)
		return []any{k, a}, err
	}},
	{"", "Spend", "spend", []any{"acct_1", int64(3)}, []any{fakeSpent}, func(ctx context.Context, s store.Store) ([]any, error) {
		r, err := s.Spend(ctx, "acct_1", 3)
		return []any{r}, err
	}},
	{"Refunder", "Refund", "refund", []any{"acct_1", int64(2)}, []any{int64(43)}, func(ctx context.Context, s store.Store) ([]any, error) {
		b, err := s.(store.Refunder).Refund(ctx, "acct_1", 2)
		return []any{b}, err
	}},
	{"Buckets", "TakeTokens", "take_tokens", []any{fakeBucket}, []any{fakeTaken}, func(ctx context.Context, s store.Store) ([]any, error) {
		r, err := s.(store.Buckets).TakeTokens(ctx, fakeBucket)
		return []any{r}, err
	}},
	{"BucketSpender", "SpendWithTokens", "spend_with_tokens", []any{"acct_1", int64(3), fakeBucket}, []any{fakeSpent, fakeTaken},
		func(ctx context.Context, s store.Store) ([]any, error) {
			r, br, err := s.(store.BucketSpender).SpendWithTokens(ctx, "acct_1", 3, fakeBucket)
			return []any{r, br}, err
		}},
	{"Ledger", "Entries", "entries", []any{"acct_1", store.LedgerQuery{After: 4, Limit: 10}}, []any{fakeEntries},
		func(ctx context.Context, s store.Store) ([]any, error) {
			es, err := s.(store.Ledger).Entries(ctx, "acct_1", store.LedgerQuery{After: 4, Limit: 10})
			return []any{es}, err
		}},
	{"Holder", "Hold", "hold", []any{"acct_1", int64(3), time.Minute}, []any{fakeHold, fakeSpent}, func(ctx context.Context, s store.Store) ([]any, error) {
		h, r, err := s.(store.Holder).Hold(ctx, "acct_1", 3, time.Minute)
		return []any{h, r}, err
	}},
	{"Holder", "Settle", "settle", []any{fakeHold, int64(1)}, []any{int64(38)}, func(ctx context.Context, s store.Store) ([]any, error) {
		b, err := s.(store.Holder).Settle(ctx, fakeHold, 1)
		return []any{b}, err
	}},
	{"BucketHolder", "HoldWithTokens", "hold_with_tokens", []any{"acct_1", int64(3), time.Minute, fakeBucket}, []any{fakeHold, fakeSpent, fakeTaken},
		func(ctx context.Context, s store.Store) ([]any, error) {
			h, r, br, err := s.(store.BucketHolder).HoldWithTokens(ctx, "acct_1", 3, time.Minute, fakeBucket)
			return []any{h, r, br}, err
		}},
	{"Slots", "AcquireSlot", "acquire_slot", []any{"k", 2, time.Minute}, []any{"slot_1", true}, func(ctx context.Context, s store.Store) ([]any, error) {
		slot, ok, err := s.(store.Slots).AcquireSlot(ctx, "k", 2, time.Minute)
		return []any{slot, ok}, err
	}},
	{"Slots", "ReleaseSlot", "release_slot", []any{"k", "slot_1"}, []any{}, func(ctx context.Context, s store.Store) ([]any, error) {
		return []any{}, s.(store.Slots).ReleaseSlot(ctx, "k", "slot_1")
	}},
	{"Admin", "Account", "account", []any{"acct_1"}, []any{fakeAccount}, func(ctx context.Context, s store.Store) ([]any, error) {
		a, err := s.(store.Admin).Account(ctx, "acct_1")
		return []any{a}, err
	}},
	{"Admin", "PutAccount", "put_account", []any{fakeAccount}, []any{}, func(ctx context.Context, s store.Store) ([]any, error) {
		return []any{}, s.(store.Admin).PutAccount(ctx, fakeAccount)
	}},
	{"Admin", "CreateAccount", "create_account", []any{fakeAccount}, []any{}, func(ctx context.Context, s store.Store) ([]any, error) {
		return []any{}, s.(store.Admin).CreateAccount(ctx, fakeAccount)
	}},
	{"Admin", "UpdateAccount", "update_account", []any{"acct_1"}, []any{store.Account{ID: "acct_1", Plan: "team", Balance: 40}},
		func(ctx context.Context, s store.Store) ([]any, error) {
			a, err := s.(store.Admin).UpdateAccount(ctx, "acct_1", func(a *store.Account) error { a.Plan = "team"; return nil })
			return []any{a}, err
		}},
	{"Admin", "Accounts", "accounts", []any{"acct_0", 10}, []any{[]store.Account{fakeAccount}}, func(ctx context.Context, s store.Store) ([]any, error) {
		as, err := s.(store.Admin).Accounts(ctx, "acct_0", 10)
		return []any{as}, err
	}},
	{"Admin", "TopUp", "top_up", []any{"acct_1", int64(10)}, []any{int64(50)}, func(ctx context.Context, s store.Store) ([]any, error) {
		b, err := s.(store.Admin).TopUp(ctx, "acct_1", 10)
		return []any{b}, err
	}},
	{"Admin", "CreateKey", "create_key", []any{"acct_1", "sk_test"}, []any{"sk_test_fake", fakeKey}, func(ctx context.Context, s store.Store) ([]any, error) {
		raw, k, err := s.(store.Admin).CreateKey(ctx, "acct_1", "sk_test")
		return []any{raw, k}, err
	}},
	{"Admin", "PutKey", "put_key", []any{fakeKey}, []any{}, func(ctx context.Context, s store.Store) ([]any, error) {
		return []any{}, s.(store.Admin).PutKey(ctx, fakeKey)
	}},
	{"Admin", "Keys", "keys", []any{"acct_1"}, []any{[]store.Key{fakeKey}}, func(ctx context.Context, s store.Store) ([]any, error) {
		ks, err := s.(store.Admin).Keys(ctx, "acct_1")
		return []any{ks}, err
	}},
	{"Admin", "RevokeKey", "revoke_key", []any{fakeKey.Digest}, []any{}, func(ctx context.Context, s store.Store) ([]any, error) {
		return []any{}, s.(store.Admin).RevokeKey(ctx, fakeKey.Digest)
	}},
	{"Admin", "TouchKeys", "touch_keys", []any{map[store.Digest]time.Time{fakeKey.Digest: fakeTime}}, []any{},
		func(ctx context.Context, s store.Store) ([]any, error) {
			return []any{}, s.(store.Admin).TouchKeys(ctx, map[store.Digest]time.Time{fakeKey.Digest: fakeTime})
		}},
	{"SpendCapper", "KeepsSpendCaps", "", nil, []any{}, func(_ context.Context, s store.Store) ([]any, error) {
		s.(store.SpendCapper).KeepsSpendCaps()
		return []any{}, nil
	}},
}

// storeCalls calls every method of the Store and of every capability.
func TestStoreCallsCoverEveryMethod(t *testing.T) {
	want := map[[2]string]bool{}
	for _, c := range append(capabilities[:], capability{"", reflect.TypeFor[store.Store](), nil}) {
		for m := range c.typ.Methods() {
			want[[2]string{c.name, m.Name}] = true
		}
	}
	got := map[[2]string]bool{}
	for _, c := range storeCalls {
		got[[2]string{c.capability, c.method}] = true
	}
	if !reflect.DeepEqual(got, want) || len(storeCalls) != len(want) {
		t.Errorf("storeCalls call %v, want each of %v once", got, want)
	}
}

// TestStoreHasExactlyTheCapabilitiesOfEachStore wraps a store of each set
// of capabilities, checks that the wrapper has exactly that set, and calls
// each method of it, once answered and once failing: each call reaches
// the store with its context and arguments, returns the store's answer,
// and is measured once.
func TestStoreHasExactlyTheCapabilitiesOfEachStore(t *testing.T) {
	if len(fakes) != 1<<len(capabilities) {
		t.Fatalf("%d fake stores, want %d", len(fakes), 1<<len(capabilities))
	}
	for mask, fakeOf := range fakes {
		t.Run(fmt.Sprintf("%09b", mask), func(t *testing.T) {
			f := &fake{}
			fs := fakeOf(f)
			if got := capabilitiesOf(fs); got != mask {
				t.Fatalf("the fake store has capabilities %09b", got)
			}
			rec := newRecorder(t, nil)
			s := rec.Store(fs)
			if got := capabilitiesOf(s); got != mask {
				t.Fatalf("the wrapped store has capabilities %09b", got)
			}
			if reflect.TypeOf(s).Kind() != reflect.Pointer {
				t.Errorf("the wrapped store is a %T, not a pointer", s)
			}
			if u, ok := s.(interface{ Unwrap() store.Store }); !ok || u.Unwrap() != fs {
				t.Error("the wrapped store does not unwrap to the store")
			}
			checkCalls(t, rec, f, s, mask)
		})
	}
}

// checkCalls makes each call of a capability in mask on s, the wrapper of
// f, and checks what f received, what s answered and what rec measured.
func checkCalls(t *testing.T, rec *recorder, f *fake, s store.Store, mask int) {
	ctx := context.WithValue(context.Background(), ctxKey{}, "request")
	timed := map[string]float64{}
	for _, fail := range []error{nil, errFake} {
		f.err = fail
		for _, c := range storeCalls {
			if mask&bitOf(t, c.capability) == 0 && c.capability != "" {
				continue
			}
			f.calls = nil
			results, err := c.call(ctx, s)
			want, wantErr := []any{c.method, "request"}, fail
			if c.op == "" { // a marker: no context, no error
				want[1], wantErr = nil, nil
			}
			if !reflect.DeepEqual(results, c.results) || err != wantErr {
				t.Errorf("%s answered %v, %v; want %v, %v", c.method, results, err, c.results, wantErr)
			}
			if want = append(want, c.args...); len(f.calls) != 1 || !reflect.DeepEqual(f.calls[0], want) {
				t.Errorf("%s: the store received %v, want %v", c.method, f.calls, want)
			}
			if c.op != "" {
				timed[c.op]++
			}
		}
	}
	checkTimed(t, rec, timed)
}

// checkTimed checks that rec timed each operation of storeCalls the number
// of times of timed, half of them failing, and nothing else.
func checkTimed(t *testing.T, rec *recorder, timed map[string]float64) {
	got := rec.collect(t)
	var total float64
	for _, c := range storeCalls {
		if c.op == "" {
			continue
		}
		op := map[string]string{"go402.store.operation": c.op}
		if n := sum(got["go402.store.duration"], op); n != timed[c.op] {
			t.Errorf("%s timed %v times, want %v", c.op, n, timed[c.op])
		}
		if n := sum(got["go402.store.errors"], op); n != timed[c.op]/2 {
			t.Errorf("%s failed %v times, want %v", c.op, n, timed[c.op]/2)
		}
		total += timed[c.op]
	}
	if n := sum(got["go402.store.duration"], nil); n != total {
		t.Errorf("%v store calls timed, want %v", n, total)
	}
}
