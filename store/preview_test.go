package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/go402/go402/store"
)

// Preview answers as Spend would, account by account, and changes nothing:
// a plain balance, one short of the cost, a negative cost, and a refill due
// (and not yet applied to the looked-up account) that covers the cost; a
// spend cap; and a balance threshold on an account without a cap.
func TestPreviewAgreesWithSpend(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	anchor := now.Add(-time.Hour)
	today := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	capped := func(spent int64, start time.Time) store.Account {
		return store.Account{ID: "a", Balance: 100, SpendCap: &store.SpendCap{Limit: 50, Period: store.PeriodDay, Spent: spent, Start: start}}
	}
	low := func() store.Account { // a threshold and no cap
		return store.Account{ID: "a", Balance: 100, Thresholds: []store.Threshold{{Kind: store.ThresholdBalance, Value: 60}}}
	}
	cases := []struct {
		name string
		a    store.Account
		cost int64
	}{
		{"covered", store.Account{ID: "a", Balance: 10}, 10},
		{"short", store.Account{ID: "a", Balance: 9}, 10},
		{"zero", store.Account{ID: "a"}, 0},
		{"refill due", store.Account{ID: "a", Balance: 1, RefilledAt: anchor.Add(-24 * time.Hour),
			Refill: &store.Refill{Amount: 100, Every: 24 * time.Hour, Anchor: anchor}}, 50},
		{"refill not due", store.Account{ID: "a", Balance: 1, RefilledAt: anchor,
			Refill: &store.Refill{Amount: 100, Every: 24 * time.Hour, Anchor: anchor}}, 50},
		{"under the cap", capped(40, today), 10},
		{"over the cap", capped(40, today), 11},
		{"cap of a past period", capped(50, today.Add(-24*time.Hour)), 50},
		{"balance threshold crossed", low(), 45},
		{"balance threshold not crossed", low(), 5},
		{"balance threshold, short", low(), 101},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.a
			got := store.Preview(&a, tc.cost, now)
			marked := len(a.Thresholds) > 0 && !a.Thresholds[0].Marked.IsZero()
			if a.Balance != tc.a.Balance || !a.RefilledAt.Equal(tc.a.RefilledAt) || marked {
				t.Fatalf("Preview changed the account: %+v", a)
			}
			m := store.NewMemory(&store.MemoryOptions{Clock: func() time.Time { return now }})
			if err := m.PutAccount(context.Background(), tc.a); err != nil {
				t.Fatal(err)
			}
			want, err := m.Spend(context.Background(), "a", tc.cost)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Preview %+v, Spend %+v", got, want)
			}
		})
	}
	if r := store.Preview(&store.Account{Balance: 5}, -1, now); r.OK || r.Balance != 5 {
		t.Errorf("negative cost: %+v, want refused with the balance", r)
	}
}
