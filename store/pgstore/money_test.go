package pgstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go402/go402/store"
)

// twoStores returns two Stores on one new schema, each on a pool of its
// own, as two replicas of a service would be.
func twoStores(t *testing.T, opts Options) (*Store, *Store) {
	t.Helper()
	p1, p2 := newPool(t, nil), newPool(t, nil)
	opts.Schema = newSchema(t, p1)
	return newStore(t, p1, opts), newStore(t, p2, opts)
}

// putAccount stores an account with balance, failing the test on error.
func putAccount(t testing.TB, s *Store, id string, balance int64) {
	t.Helper()
	if err := s.PutAccount(context.Background(), store.Account{ID: id, Balance: balance}); err != nil {
		t.Fatal(err)
	}
}

func TestSpendExactAcrossPools(t *testing.T) {
	a, b := twoStores(t, Options{})
	const balance, cost, n = 1000, 7, 300
	putAccount(t, a, "acct", balance)
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.Spend(context.Background(), "acct", cost)
			if err != nil {
				t.Error(err)
			}
			if res.OK {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	want := min(int64(n), balance/cost)
	if ok.Load() != want {
		t.Errorf("%d spends of %d against %d admitted %d, want %d", n, cost, balance, ok.Load(), want)
	}
	res, err := b.Spend(context.Background(), "acct", 0)
	if err != nil || res.Balance != balance-want*cost {
		t.Errorf("balance %d, %v; want %d", res.Balance, err, balance-want*cost)
	}
	checkLedger(t, a, "acct", res.Balance)
}

// entries returns every ledger entry of account id.
func entries(t testing.TB, s *Store, id string) []store.LedgerEntry {
	t.Helper()
	var all []store.LedgerEntry
	q := store.LedgerQuery{Limit: 7}
	for {
		page, err := s.Entries(context.Background(), id, q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < q.Limit {
			return all
		}
		q.After = page[len(page)-1].Seq
	}
}

// checkLedger checks that the ledger of account id is a chain, each entry's
// Balance the previous one's plus its Amount, ending at balance.
func checkLedger(t testing.TB, s *Store, id string, balance int64) {
	t.Helper()
	var sum, last int64
	for i, e := range entries(t, s, id) {
		sum += e.Amount
		if e.Balance != sum {
			t.Errorf("entry %d (%s %d, seq %d): balance %d, want %d", i, e.Kind, e.Amount, e.Seq, e.Balance, sum)
		}
		if e.Seq <= last {
			t.Errorf("entry %d: seq %d after %d", i, e.Seq, last)
		}
		last = e.Seq
	}
	if sum != balance {
		t.Errorf("account %s: ledger sums to %d, balance is %d", id, sum, balance)
	}
}

// TestLedgerAgreesWithBalances runs random concurrent spends, refunds of
// them (some twice), repeated operations and top-ups on two replicas, then
// checks that every balance is the sum of its ledger.
func TestLedgerAgreesWithBalances(t *testing.T) {
	a, b := twoStores(t, Options{})
	const accounts, workers, steps = 4, 16, 40
	for i := range accounts {
		putAccount(t, a, fmt.Sprint("acct", i), 50)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			s := [2]*Store{a, b}[w%2]
			for i := range steps {
				randomStep(t, s, rng, fmt.Sprint("acct", rng.IntN(accounts)), fmt.Sprintf("op-%d-%d", w, i))
			}
		}()
	}
	wg.Wait()
	for i := range accounts {
		id := fmt.Sprint("acct", i)
		res, err := a.Spend(context.Background(), id, 0)
		if err != nil {
			t.Fatal(err)
		}
		checkLedger(t, b, id, res.Balance)
	}
}

// randomStep makes one random movement of credits as operation opID.
func randomStep(t *testing.T, s *Store, rng *rand.Rand, id, opID string) {
	ctx := store.WithOperation(context.Background(), store.Operation{ID: opID, Route: "GET /x", KeyPrefix: "sk_test_"})
	var err error
	switch rng.IntN(4) {
	case 0, 1:
		var res store.SpendResult
		res, err = s.Spend(ctx, id, rng.Int64N(20))
		if err == nil && res.OK && rng.IntN(2) == 0 {
			_, err = s.Spend(ctx, id, 5) // a repeat: returns the first outcome
		}
		if err == nil && rng.IntN(2) == 0 {
			_, err = s.Refund(ctx, id, 1+rng.Int64N(30))
		}
		if err == nil && rng.IntN(4) == 0 {
			_, err = s.Refund(ctx, id, 1+rng.Int64N(30))
		}
	case 2:
		_, err = s.TopUp(ctx, id, 1+rng.Int64N(10))
	case 3:
		_, err = s.Refund(context.Background(), id, 1+rng.Int64N(3))
	}
	if err != nil {
		t.Error(err)
	}
}

func TestOperationMovesCreditsOnce(t *testing.T) {
	a, b := twoStores(t, Options{})
	putAccount(t, a, "acct", 100)
	op := store.Operation{ID: "op-1", Route: "GET /v1/reports", KeyPrefix: "sk_test_ab12"}
	ctx := store.WithOperation(context.Background(), op)
	first, err := a.Spend(ctx, "acct", 30)
	if err != nil || !first.OK || first.Balance != 70 {
		t.Fatalf("Spend = %+v, %v; want OK at 70", first, err)
	}
	again, err := b.Spend(ctx, "acct", 30)
	if err != nil || again != first {
		t.Errorf("repeated Spend = %+v, %v; want %+v", again, err, first)
	}
	if bal, err := b.Refund(ctx, "acct", 50); err != nil || bal != 100 {
		t.Errorf("Refund(50) of a debit of 30 = %d, %v; want 100 (30 back)", bal, err)
	}
	if bal, err := a.Refund(ctx, "acct", 30); err != nil || bal != 100 {
		t.Errorf("second Refund = %d, %v; want 100 (nothing back)", bal, err)
	}
	other := store.WithOperation(context.Background(), store.Operation{ID: "op-never-debited"})
	if bal, err := a.Refund(other, "acct", 10); err != nil || bal != 100 {
		t.Errorf("Refund of an operation that debited nothing = %d, %v; want 100", bal, err)
	}
	top := store.WithOperation(context.Background(), store.Operation{ID: "topup-1"})
	for range 2 {
		if bal, err := b.TopUp(top, "acct", 5); err != nil || bal != 105 {
			t.Errorf("TopUp(5) as one operation = %d, %v; want 105", bal, err)
		}
	}
	es := entries(t, a, "acct")
	kinds := ""
	for _, e := range es {
		kinds += e.Kind + " "
	}
	if kinds != "adjust debit refund topup " {
		t.Errorf("ledger kinds %q, want \"adjust debit refund topup \"", kinds)
	}
	if d := es[1]; d.OperationID != op.ID || d.Route != op.Route || d.KeyPrefix != op.KeyPrefix || d.Amount != -30 {
		t.Errorf("debit entry %+v, want operation %+v and amount -30", d, op)
	}
	checkLedger(t, a, "acct", 105)
}

// TestRepeatedSpendAfterBalanceFell repeats a debit after other spends
// took the balance below its cost: the repeat still reports the first
// outcome and debits nothing.
func TestRepeatedSpendAfterBalanceFell(t *testing.T) {
	a, _ := twoStores(t, Options{})
	putAccount(t, a, "acct", 100)
	ctx := store.WithOperation(context.Background(), store.Operation{ID: "op-1"})
	first, err := a.Spend(ctx, "acct", 60)
	if err != nil || !first.OK {
		t.Fatalf("Spend = %+v, %v", first, err)
	}
	if res, err := a.Spend(context.Background(), "acct", 40); err != nil || res.Balance != 0 {
		t.Fatalf("Spend(40) = %+v, %v; want balance 0", res, err)
	}
	if again, err := a.Spend(ctx, "acct", 60); err != nil || again != first {
		t.Errorf("repeated Spend at balance 0 = %+v, %v; want the first outcome %+v", again, err, first)
	}
	checkLedger(t, a, "acct", 0)
}
