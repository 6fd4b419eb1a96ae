package paywall

import (
	"testing"
	"time"

	"github.com/go402/go402/store"
)

// entitled: active, trialing and empty statuses grant access until the
// period's end, exclusive; every other status never does.
func TestEntitled(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := mustNew(t, &Options{Clock: func() time.Time { return now }})
	for _, tc := range []struct {
		status store.Status
		end    time.Time
		want   bool
	}{
		{"", time.Time{}, true},
		{store.StatusActive, time.Time{}, true},
		{store.StatusTrialing, now.Add(time.Nanosecond), true},
		{store.StatusActive, now, false},
		{store.StatusActive, now.Add(-time.Hour), false},
		{store.StatusPastDue, time.Time{}, false},
		{store.StatusCanceled, now.Add(time.Hour), false},
		{store.StatusSuspended, time.Time{}, false},
	} {
		a := store.Account{ID: "a", Status: tc.status, PeriodEnd: tc.end}
		if got := p.entitled(&a); got != tc.want {
			t.Errorf("status %q, period end %v: entitled %v, want %v", tc.status, tc.end, got, tc.want)
		}
	}
}
