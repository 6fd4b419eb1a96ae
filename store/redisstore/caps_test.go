package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/go402/go402/store"
	"github.com/go402/go402/store/storetest"
)

// TestCapMonthBounds checks that the spend script's monthly cap periods,
// anchored to the billing cycle or calendar months, end where
// store.Period.Bounds says, across short months and leap years.
func TestCapMonthBounds(t *testing.T) {
	c := newClient(t)
	clock := new(storetest.Clock)
	s := newTestStore(t, c, &Options{Clock: clock.Now})
	s.scriptClock = clock.Now
	ctx := context.Background()
	anchors := []time.Time{
		{}, // calendar months
		time.Date(2024, 1, 31, 10, 30, 0, 0, time.UTC),
		time.Date(2023, 11, 30, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC),
	}
	steps := []time.Duration{0, 40 * 24 * time.Hour, 20 * 24 * time.Hour, 9 * time.Hour, 400 * 24 * time.Hour, 31 * 24 * time.Hour}
	for i, anchor := range anchors {
		a := store.Account{ID: "capmonth" + string(rune('a'+i)), Balance: 1 << 40,
			SpendCap: &store.SpendCap{Limit: 1 << 30, Period: store.PeriodMonth}}
		if !anchor.IsZero() {
			a.Refill = &store.Refill{Amount: 1, Every: 1000 * time.Hour, Anchor: anchor}
		}
		if err := s.PutAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		for _, d := range steps {
			clock.Advance(d)
			r, err := s.Spend(ctx, a.ID, 1)
			if err != nil || r.Cap == nil {
				t.Fatalf("Spend: %+v, %v", r, err)
			}
			_, end := store.PeriodMonth.Bounds(clock.Now(), anchor)
			if !r.Cap.ResetAt.Equal(end) {
				t.Errorf("anchor %v at %v: ResetAt %v, want %v", anchor, clock.Now(), r.Cap.ResetAt.UTC(), end)
			}
		}
	}
}
