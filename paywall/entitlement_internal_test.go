package paywall

import (
	"testing"
	"time"

	"github.com/go402/go402/store"
)

// entitled: active, trialing and empty statuses grant access until the
// period's end, exclusive; past due only in its grace; every other status
// never does.
func TestEntitled(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := mustNew(t, &Options{Clock: func() time.Time { return now }})
	for _, tc := range []struct {
		status store.Status
		end    time.Time
		want   bool
		grace  time.Time
	}{
		{"", time.Time{}, true, time.Time{}},
		{store.StatusActive, time.Time{}, true, time.Time{}},
		{store.StatusTrialing, now.Add(time.Nanosecond), true, time.Time{}},
		{store.StatusActive, now, false, time.Time{}},
		{store.StatusActive, now.Add(-time.Hour), false, time.Time{}},
		{store.StatusPastDue, time.Time{}, false, time.Time{}},
		{store.StatusCanceled, now.Add(time.Hour), false, time.Time{}},
		{store.StatusSuspended, time.Time{}, false, time.Time{}},
		{store.StatusPastDue, time.Time{}, true, now.Add(time.Nanosecond)},
		{store.StatusPastDue, time.Time{}, false, now},
		{store.StatusCanceled, time.Time{}, false, now.Add(time.Hour)},
	} {
		a := store.Account{ID: "a", Status: tc.status, PeriodEnd: tc.end, GraceUntil: tc.grace}
		if got := p.entitled(&a); got != tc.want {
			t.Errorf("status %q, period end %v: entitled %v, want %v", tc.status, tc.end, got, tc.want)
		}
	}
}
