package store

import (
	"fmt"
	"math"
	"time"
)

// Window is one window of a rate-limit policy besides its main token
// bucket: another token bucket (Rate, Burst), or at most Burst requests'
// tokens per calendar Period. A request passes only if every window of its
// policy admits it, and then takes from all of them. The limiter's
// Options.Windows and Options.PlanWindows configure windows per plan;
// [Account.Windows] overrides them for one account.
type Window struct {
	// Name names the window in the RateLimit headers and a denial's
	// violated-policies: printable ASCII, 1 to 64 bytes.
	Name   string  `json:"name"`
	Rate   float64 `json:"rate,omitempty"`   // a token bucket's tokens per second; zero with Period
	Burst  int     `json:"burst"`            // its capacity, or the tokens per Period; positive
	Period Period  `json:"period,omitempty"` // if set, a count per period instead of a token bucket
}

// Period is the period of a fixed [Window].
type Period string

// Periods. Seconds, minutes, hours and days are those of UTC. A month runs
// from the billing anchor's day and time of day (an account's
// [Refill].Anchor) to the same day and time of the next month, or to that
// month's last day if it is shorter; without an anchor, from the first of
// a UTC calendar month to the next.
const (
	PeriodSecond Period = "second"
	PeriodMinute Period = "minute"
	PeriodHour   Period = "hour"
	PeriodDay    Period = "day"
	PeriodMonth  Period = "month"
)

// fixedLength is the length of the periods other than months.
var fixedLength = map[Period]time.Duration{
	PeriodSecond: time.Second, PeriodMinute: time.Minute, PeriodHour: time.Hour, PeriodDay: 24 * time.Hour,
}

// Valid reports whether p is one of the periods above.
func (p Period) Valid() bool { return p == PeriodMonth || fixedLength[p] != 0 }

// Seconds returns p's nominal length in seconds, a month counting 30 days:
// the w of its RateLimit-Policy item.
func (p Period) Seconds() int64 {
	if p == PeriodMonth {
		return 30 * 24 * 3600
	}
	return int64(fixedLength[p] / time.Second)
}

// Bounds returns the start and end of the period p that holds now; anchor
// is a month's billing anchor (zero for calendar months), which other
// periods ignore. An invalid p yields zero times.
func (p Period) Bounds(now, anchor time.Time) (start, end time.Time) {
	if d := fixedLength[p]; d != 0 {
		ns := now.UnixNano()
		s := ns - ((ns%int64(d))+int64(d))%int64(d)
		return time.Unix(0, s).UTC(), time.Unix(0, s+int64(d)).UTC()
	}
	if p != PeriodMonth {
		return time.Time{}, time.Time{}
	}
	if anchor.IsZero() {
		y, m, _ := now.UTC().Date()
		return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC), time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	}
	anchor = anchor.UTC()
	now = now.UTC()
	k := (now.Year()-anchor.Year())*12 + int(now.Month()-anchor.Month())
	for addMonths(anchor, k).After(now) {
		k--
	}
	for !addMonths(anchor, k+1).After(now) {
		k++
	}
	return addMonths(anchor, k), addMonths(anchor, k+1)
}

// addMonths returns a moved k months on, its day clamped to the month's
// last.
func addMonths(a time.Time, k int) time.Time {
	y, m, d := a.Date()
	first := time.Date(y, m+time.Month(k), 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return time.Date(first.Year(), first.Month(), min(d, last), a.Hour(), a.Minute(), a.Second(), a.Nanosecond(), time.UTC)
}

// Problem describes the first problem of w, or is "".
func (w *Window) Problem() string {
	switch {
	case w.Name == "" || len(w.Name) > 64:
		return fmt.Sprintf("window name must be 1 to 64 bytes, got %q", w.Name)
	case w.Burst <= 0:
		return fmt.Sprintf("window %q: burst must be > 0, got %d", w.Name, w.Burst)
	case w.Period != "" && !w.Period.Valid():
		return fmt.Sprintf("window %q: unknown period %q", w.Name, w.Period)
	case w.Period != "" && w.Rate != 0:
		return fmt.Sprintf("window %q: a rate and a period: set one", w.Name)
	case w.Period == "" && (!(w.Rate > 0) || math.IsInf(w.Rate, 1)):
		return fmt.Sprintf("window %q: rate must be a positive number, got %v", w.Name, w.Rate)
	}
	for i := 0; i < len(w.Name); i++ {
		if c := w.Name[i]; c < ' ' || c > '~' {
			return fmt.Sprintf("window name must be printable ASCII, got %q", w.Name)
		}
	}
	return ""
}
