package paywall

import (
	"testing"
	"time"
)

func TestRetrySeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{
		time.Nanosecond:              1,
		999 * time.Millisecond:       1,
		time.Second:                  1,
		time.Second + 1:              2,
		90 * time.Second:             90,
		23*time.Hour + 1:             82801,
		time.Duration(1<<63 - 1):     9223372037,
		-time.Second /* not sent */ : 1,
	} {
		if got := retrySeconds(d); got != want {
			t.Errorf("retrySeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestQuality(t *testing.T) {
	for params, want := range map[string]float64{
		"":               1,
		"q=0.5":          0.5,
		" q = 0.25 ":     0.25,
		"level=1;Q=0":    0,
		"q=2":            1,
		"q=-1":           0,
		"q=abc":          1,
		"q=NaN":          1,
		"charset=utf-8":  1,
		"q=0.001;foo=ba": 0.001,
	} {
		if got := quality(params); got != want {
			t.Errorf("quality(%q) = %v, want %v", params, got, want)
		}
	}
}

// FuzzNegotiate checks that no Accept header makes negotiate panic or
// answer something other than the three formats, and that a header naming
// only application/json always gets JSON.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"", "*/*", "text/html,*/*;q=0.8", "text/plain;q=0.5, application/json;q=0.1", ",,;;//", "text/html;q=1e400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		switch negotiate([]string{accept}) {
		case formatJSON, formatHTML, formatText:
		default:
			t.Fatalf("negotiate(%q) gave an unknown format", accept)
		}
		if got := negotiate([]string{accept, "application/json;q=1"}); got == formatText {
			t.Fatalf("negotiate(%q + application/json) = text", accept)
		}
	})
}
