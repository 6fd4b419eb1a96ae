package storetest

import (
	"math"
	"slices"
	"time"

	"github.com/go402/go402/store"
)

var spendTests = []subtest{
	{"Debits", testSpendDebits},
	{"Refused", testSpendRefused},
	{"Zero", testSpendZero},
	{"NegativeCost", testSpendNegativeCost},
	{"HugeCost", testSpendHugeCost},
	{"UnknownAccount", testSpendUnknownAccount},
	{"ExactUnderConcurrency", testSpendExactUnderConcurrency},
}

// testSpendDebits checks that spends subtract exactly, down to zero.
func testSpendDebits(e *env) {
	id := e.seedBalance(100, nil, time.Time{})
	e.wantSpend(id, 30, store.SpendResult{OK: true, Balance: 70})
	e.wantSpend(id, 70, store.SpendResult{OK: true, Balance: 0})
	e.wantSpend(id, 1, store.SpendResult{OK: false, Balance: 0})
	e.wantBalance(id, 0)
}

// testSpendRefused checks that a spend the balance cannot cover reports
// the balance and changes nothing.
func testSpendRefused(e *env) {
	id := e.seedBalance(5, nil, time.Time{})
	e.wantSpend(id, 10, store.SpendResult{OK: false, Balance: 5})
	e.wantBalance(id, 5)
	e.wantSpend(id, 5, store.SpendResult{OK: true, Balance: 0})
}

// testSpendZero checks that a cost of zero always succeeds, even on an
// empty balance, and changes nothing.
func testSpendZero(e *env) {
	for _, balance := range []int64{0, 42} {
		id := e.seedBalance(balance, nil, time.Time{})
		e.wantSpend(id, 0, store.SpendResult{OK: true, Balance: balance})
		e.wantSpend(id, 0, store.SpendResult{OK: true, Balance: balance})
	}
}

// testSpendNegativeCost checks that a negative cost is an error wrapping
// ErrInvalidAmount and changes nothing.
func testSpendNegativeCost(e *env) {
	id := e.seedBalance(50, nil, time.Time{})
	for _, cost := range []int64{-1, -50, math.MinInt64} {
		_, err := e.h.Store.Spend(e.ctx, id, cost)
		e.wantErr("Spend(negative cost)", err, store.ErrInvalidAmount)
	}
	e.wantBalance(id, 50)
}

// testSpendHugeCost checks that a cost far above the balance is refused
// without overflow.
func testSpendHugeCost(e *env) {
	id := e.seedBalance(100, nil, time.Time{})
	e.wantSpend(id, math.MaxInt64, store.SpendResult{OK: false, Balance: 100})
	e.wantBalance(id, 100)
}

// testSpendUnknownAccount checks that spending from an account never
// stored is an error wrapping ErrNotFound.
func testSpendUnknownAccount(e *env) {
	e.seedBalance(100, nil, time.Time{}) // the store is not empty
	_, err := e.h.Store.Spend(e.ctx, e.newID(), 1)
	e.wantErr("Spend(unknown account)", err, store.ErrNotFound)
}

// testSpendExactUnderConcurrency checks that 200 concurrent spends of 10
// against a balance of 1000 admit exactly 100, each leaving a distinct
// balance, and that the balance never goes below zero.
func testSpendExactUnderConcurrency(e *env) {
	const (
		workers = 200
		cost    = 10
		balance = 1000
	)
	id := e.seedBalance(balance, nil, time.Time{})

	results := make([]store.SpendResult, workers)
	e.concurrently("concurrent Spend", workers, func(i int) (err error) {
		results[i], err = e.h.Store.Spend(e.ctx, id, cost)
		return err
	})

	var after []int64 // balances left by the admitted spends
	for _, r := range results {
		if r.Balance < 0 {
			e.Errorf("concurrent Spend left balance %d < 0", r.Balance)
		}
		if r.OK {
			after = append(after, r.Balance)
		} else if r.Balance >= cost {
			e.Errorf("concurrent Spend refused with balance %d ≥ cost %d", r.Balance, cost)
		}
	}
	if len(after) != balance/cost {
		e.Errorf("concurrent Spend admitted %d of %d, want exactly %d", len(after), workers, balance/cost)
	}
	slices.Sort(after)
	for i, b := range after {
		if want := int64(i * cost); b != want {
			e.Errorf("admitted spends left balances %v, want each of 0, %d, … %d once", after, cost, balance-cost)
			break
		}
	}
	e.wantBalance(id, 0)
}
