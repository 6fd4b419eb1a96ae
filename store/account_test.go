package store_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go402/go402/store"
)

func TestStatusValid(t *testing.T) {
	for _, s := range []store.Status{store.StatusActive, store.StatusTrialing, store.StatusPastDue, store.StatusCanceled, store.StatusSuspended} {
		if !s.Valid() {
			t.Errorf("%q.Valid() = false", s)
		}
	}
	for _, s := range []store.Status{"", "Active", "paused"} {
		if s.Valid() {
			t.Errorf("%q.Valid() = true", s)
		}
	}
}

func TestAccountEntitled(t *testing.T) {
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		status    store.Status
		periodEnd time.Time
		want      bool
	}{
		{"", time.Time{}, true},
		{store.StatusActive, time.Time{}, true},
		{store.StatusTrialing, now.Add(time.Hour), true},
		{store.StatusActive, now.Add(time.Nanosecond), true},
		{store.StatusActive, now, false}, // the period ends at PeriodEnd
		{store.StatusTrialing, now.Add(-time.Hour), false},
		{store.StatusPastDue, time.Time{}, false},
		{store.StatusCanceled, now.Add(time.Hour), false},
		{store.StatusSuspended, time.Time{}, false},
		{"unknown", time.Time{}, false},
	}
	for _, tt := range tests {
		a := store.Account{Status: tt.status, PeriodEnd: tt.periodEnd}
		if got := a.Entitled(now); got != tt.want {
			t.Errorf("Account{Status: %q, PeriodEnd: %v}.Entitled = %v, want %v", tt.status, tt.periodEnd, got, tt.want)
		}
	}
}

func TestAccountHasFeature(t *testing.T) {
	a := store.Account{Features: []string{"reports", "export"}}
	for name, want := range map[string]bool{"reports": true, "export": true, "Reports": false, "": false, "admin": false} {
		if got := a.HasFeature(name); got != want {
			t.Errorf("HasFeature(%q) = %v, want %v", name, got, want)
		}
	}
	if (&store.Account{}).HasFeature("reports") {
		t.Errorf("an account without features has one")
	}
}

func TestAccountClone(t *testing.T) {
	orig := store.Account{
		ID:        "a",
		Features:  append(make([]string, 0, 10), "reports"),
		Refill:    &store.Refill{Amount: 1, Every: time.Hour, Anchor: time.Unix(0, 0)},
		RateLimit: &store.RateLimit{Rate: 1, Burst: 1},
		Metadata:  map[string]string{"k": "v"},
	}
	c := orig.Clone()
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
	if z := (store.Account{}).Clone(); !reflect.DeepEqual(z, store.Account{}) {
		t.Errorf("zero Account's Clone = %+v", z)
	}
}

func TestAccountValidate(t *testing.T) {
	anchor := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		a    store.Account
		want string // "" for valid; else part of the error
	}{
		{"minimal", store.Account{ID: "a"}, ""},
		{"full", store.Account{ID: "a", Status: store.StatusPastDue, Balance: math.MaxInt64,
			Refill:    &store.Refill{Amount: 1, Every: time.Nanosecond, Anchor: anchor},
			RateLimit: &store.RateLimit{Rate: math.Inf(1), Burst: 1}}, ""},
		{"empty ID", store.Account{}, "ID must not be empty"},
		{"long ID", store.Account{ID: strings.Repeat("a", store.MaxIDLength+1)}, "longer than"},
		{"status", store.Account{ID: "a", Status: "paused"}, "unknown status"},
		{"balance", store.Account{ID: "a", Balance: -1}, "negative balance"},
		{"refill amount", store.Account{ID: "a", Refill: &store.Refill{Amount: 0, Every: time.Hour, Anchor: anchor}}, "refill amount"},
		{"refill period", store.Account{ID: "a", Refill: &store.Refill{Amount: 1, Every: -time.Hour, Anchor: anchor}}, "refill period"},
		{"refill anchor", store.Account{ID: "a", Refill: &store.Refill{Amount: 1, Every: time.Hour}}, "anchor"},
		{"rate zero", store.Account{ID: "a", RateLimit: &store.RateLimit{Burst: 1}}, "rate must be > 0"},
		{"rate NaN", store.Account{ID: "a", RateLimit: &store.RateLimit{Rate: math.NaN(), Burst: 1}}, "rate must be > 0"},
		{"burst", store.Account{ID: "a", RateLimit: &store.RateLimit{Rate: 1, Burst: -1}}, "burst must be > 0"},
	}
	for _, tt := range tests {
		err := tt.a.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: Validate() = %v, want nil", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "store: ")):
			t.Errorf("%s: Validate() = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestRefillBoundaryAndNext(t *testing.T) {
	anchor := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := store.Refill{Amount: 10, Every: 24 * time.Hour, Anchor: anchor}
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
		b, ok := r.Boundary(tt.now)
		if ok != tt.wantBoundary || !b.Equal(tt.boundary) {
			t.Errorf("Boundary(%v) = %v, %v; want %v, %v", tt.now, b, ok, tt.boundary, tt.wantBoundary)
		}
		if n := r.Next(tt.now); !n.Equal(tt.next) {
			t.Errorf("Next(%v) = %v, want %v", tt.now, n, tt.next)
		}
	}
}

func TestAccountApplyRefill(t *testing.T) {
	anchor := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const every = 24 * time.Hour
	refill := &store.Refill{Amount: 100, Every: every, Anchor: anchor}
	tests := []struct {
		name        string
		balance     int64
		refilledAt  time.Time
		refill      *store.Refill
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
		a := store.Account{ID: "a", Balance: tt.balance, Refill: tt.refill, RefilledAt: tt.refilledAt}
		changed := a.ApplyRefill(tt.now)
		if changed != tt.changed || a.Balance != tt.wantBalance || !a.RefilledAt.Equal(tt.wantAt) {
			t.Errorf("%s: ApplyRefill = %v, balance %d, refilled at %v; want %v, %d, %v",
				tt.name, changed, a.Balance, a.RefilledAt, tt.changed, tt.wantBalance, tt.wantAt)
		}
		if again := a.ApplyRefill(tt.now); again {
			t.Errorf("%s: a second ApplyRefill at the same time changed the account", tt.name)
		}
	}
	if n := (&store.Account{}).NextRefill(anchor); !n.IsZero() {
		t.Errorf("NextRefill without a refill = %v, want the zero time", n)
	}
}

func TestAccountJSON(t *testing.T) {
	a := store.Account{
		ID:        "a",
		Plan:      "pro",
		Status:    store.StatusTrialing,
		PeriodEnd: time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC),
		Features:  []string{"reports"},
		Balance:   42,
		Refill:    &store.Refill{Amount: 100, Every: time.Hour, Anchor: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
		RateLimit: &store.RateLimit{Rate: 0.5, Burst: 3},
		Metadata:  map[string]string{"k": "v"},
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back store.Account
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, a) {
		t.Errorf("JSON round trip:\n got %+v\nwant %+v\n(%s)", back, a, b)
	}
}
