package store

import (
	"reflect"
	"testing"
	"time"
)

func TestStatusValid(t *testing.T) {
	for _, s := range []Status{StatusActive, StatusTrialing, StatusPastDue, StatusCanceled, StatusSuspended} {
		if !s.valid() {
			t.Errorf("%q.valid() = false", s)
		}
	}
	for _, s := range []Status{"", "Active", "paused"} {
		if s.valid() {
			t.Errorf("%q.valid() = true", s)
		}
	}
}

func TestAccountClone(t *testing.T) {
	orig := Account{
		ID:         "a",
		Features:   append(make([]string, 0, 10), "reports"),
		Refill:     &Refill{Amount: 1, Every: time.Hour, Anchor: time.Unix(0, 0)},
		RateLimit:  &RateLimit{Rate: 1, Burst: 1},
		Metadata:   map[string]string{"k": "v"},
		GraceUntil: time.Unix(1, 0), Lapse: LapseCanceled, PaymentURL: "https://example.com/p",
	}
	c := orig.clone()
	if !reflect.DeepEqual(c, orig) {
		t.Fatalf("Clone = %+v, want %+v", c, orig)
	}
	if cap(c.Features) != len(c.Features) {
		t.Errorf("Clone's Features has spare capacity %d", cap(c.Features)-len(c.Features))
	}
	c.Features[0] = "x"
	c.Refill.Amount = 2
	c.RateLimit.Burst = 2
	c.Metadata["k"] = "x"
	if orig.Features[0] != "reports" || orig.Refill.Amount != 1 || orig.RateLimit.Burst != 1 || orig.Metadata["k"] != "v" {
		t.Errorf("changing the clone changed the original: %+v", orig)
	}
	if z := (Account{}).clone(); !reflect.DeepEqual(z, Account{}) {
		t.Errorf("zero Account's Clone = %+v", z)
	}
}

func TestRefillBoundaryAndNext(t *testing.T) {
	anchor := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := Refill{Amount: 10, Every: 24 * time.Hour, Anchor: anchor}
	tests := []struct {
		now          time.Time
		boundary     time.Time // zero: none yet
		next         time.Time
		wantBoundary bool
	}{
		{anchor.Add(-time.Nanosecond), time.Time{}, anchor, false},
		{anchor, anchor, anchor.Add(24 * time.Hour), true},
		{anchor.Add(24*time.Hour - 1), anchor, anchor.Add(24 * time.Hour), true},
		{anchor.Add(24 * time.Hour), anchor.Add(24 * time.Hour), anchor.Add(48 * time.Hour), true},
		{anchor.Add(100*24*time.Hour + time.Minute), anchor.Add(100 * 24 * time.Hour), anchor.Add(101 * 24 * time.Hour), true},
	}
	for _, tt := range tests {
		b, ok := r.boundary(tt.now)
		if ok != tt.wantBoundary || !b.Equal(tt.boundary) {
			t.Errorf("Boundary(%v) = %v, %v; want %v, %v", tt.now, b, ok, tt.boundary, tt.wantBoundary)
		}
		a := Account{Refill: &r}
		if n := a.nextRefill(tt.now); !n.Equal(tt.next) {
			t.Errorf("nextRefill(%v) = %v, want %v", tt.now, n, tt.next)
		}
	}
}

func TestAccountApplyRefill(t *testing.T) {
	anchor := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const every = 24 * time.Hour
	refill := &Refill{Amount: 100, Every: every, Anchor: anchor}
	tests := []struct {
		name        string
		balance     int64
		refilledAt  time.Time
		refill      *Refill
		now         time.Time
		changed     bool
		wantBalance int64
		wantAt      time.Time
	}{
		{"no refill", 5, time.Time{}, nil, anchor, false, 5, time.Time{}},
		{"before anchor", 5, time.Time{}, refill, anchor.Add(-1), false, 5, time.Time{}},
		{"at anchor", 5, time.Time{}, refill, anchor, true, 100, anchor},
		{"within the period", 5, anchor, refill, anchor.Add(every - 1), false, 5, anchor},
		{"next boundary", 5, anchor, refill, anchor.Add(every), true, 100, anchor.Add(every)},
		{"boundaries skipped", 5, anchor, refill, anchor.Add(3*every + 1), true, 100, anchor.Add(3 * every)},
		{"higher balance kept", 500, anchor, refill, anchor.Add(every), true, 500, anchor.Add(every)},
		{"refilled later than the boundary", 5, anchor.Add(every + 1), refill, anchor.Add(every + 2), false, 5, anchor.Add(every + 1)},
	}
	for _, tt := range tests {
		a := Account{ID: "a", Balance: tt.balance, Refill: tt.refill, RefilledAt: tt.refilledAt}
		changed := a.applyRefill(tt.now)
		if changed != tt.changed || a.Balance != tt.wantBalance || !a.RefilledAt.Equal(tt.wantAt) {
			t.Errorf("%s: ApplyRefill = %v, balance %d, refilled at %v; want %v, %d, %v",
				tt.name, changed, a.Balance, a.RefilledAt, tt.changed, tt.wantBalance, tt.wantAt)
		}
		if again := a.applyRefill(tt.now); again {
			t.Errorf("%s: a second ApplyRefill at the same time changed the account", tt.name)
		}
	}
	if n := (&Account{}).nextRefill(anchor); !n.IsZero() {
		t.Errorf("NextRefill without a refill = %v, want the zero time", n)
	}
}
