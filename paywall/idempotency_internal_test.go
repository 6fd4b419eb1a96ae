package paywall

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseIdempotencyKey(t *testing.T) {
	max := strings.Repeat("k", maxIdempotencyKeyLength)
	maxEscaped := strings.Repeat(`\\`, maxIdempotencyKeyLength)
	tests := []struct {
		lines   []string
		want    string
		wantErr error
	}{
		{[]string{`"abc"`}, "abc", nil},
		{[]string{`abc`}, "abc", nil},
		{[]string{" \t\"abc\" \t"}, "abc", nil},
		{[]string{`"8e03978e-40d5-43e8-bc93-6894a57f9324"`}, "8e03978e-40d5-43e8-bc93-6894a57f9324", nil},
		{[]string{`urn:uuid:8e03978e/1`}, "urn:uuid:8e03978e/1", nil},
		{[]string{`"with space, comma; and = signs"`}, "with space, comma; and = signs", nil},
		{[]string{`"a\"b\\c"`}, `a"b\c`, nil},
		{[]string{`"\\"`}, `\`, nil},
		{[]string{`"x"`, `x`}, "x", nil},
		{[]string{`"` + max + `"`}, max, nil},
		{[]string{max}, max, nil},
		{[]string{`"` + maxEscaped + `"`}, strings.Repeat(`\`, maxIdempotencyKeyLength), nil},

		{[]string{`"` + max + `k"`}, "", errIdemTooLong},
		{[]string{max + "k"}, "", errIdemTooLong},
		{[]string{`"` + maxEscaped + `\\"`}, "", errIdemTooLong},
		{[]string{`"` + maxEscaped + `k"`}, "", errIdemTooLong},
		{[]string{`"x"`, `"y"`}, "", errIdemConflicting},
		{[]string{`"x"`, `"y`}, "", errIdemMalformed},
		{[]string{``}, "", errIdemMalformed},
		{[]string{` `}, "", errIdemMalformed},
		{[]string{`""`}, "", errIdemMalformed},
		{[]string{`"`}, "", errIdemMalformed},
		{[]string{`"abc`}, "", errIdemMalformed},
		{[]string{`"abc\"`}, "", errIdemMalformed},
		{[]string{`"abc\`}, "", errIdemMalformed},
		{[]string{`"a\bc"`}, "", errIdemMalformed},
		{[]string{`"abc";p=1`}, "", errIdemMalformed},
		{[]string{`"abc" x`}, "", errIdemMalformed},
		{[]string{`"a", "b"`}, "", errIdemMalformed},
		{[]string{"\"a\tb\""}, "", errIdemMalformed},
		{[]string{"\"a\x7fb\""}, "", errIdemMalformed},
		{[]string{`"é"`}, "", errIdemMalformed},
		{[]string{`a b`}, "", errIdemMalformed},
		{[]string{`a"b`}, "", errIdemMalformed},
		{[]string{`abc;p=1`}, "", errIdemMalformed},
		{[]string{`a,b`}, "", errIdemMalformed},
	}
	for _, tt := range tests {
		got, err := parseIdempotencyKey(tt.lines)
		if got != tt.want || err != tt.wantErr {
			t.Errorf("parseIdempotencyKey(%q) = %q, %v; want %q, %v", tt.lines, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzParseIdempotencyKey checks that an accepted key is 1 to
// maxIdempotencyKeyLength printable ASCII bytes, and that quoting it as an
// sf-string gives the same key back.
func FuzzParseIdempotencyKey(f *testing.F) {
	for _, s := range []string{`"abc"`, `abc`, `"a\"b\\c"`, `""`, `"abc";p=1`, `a b`, `"` + strings.Repeat(`\\`, 300) + `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		key, err := parseIdempotencyKey([]string{v})
		if err != nil {
			if key != "" {
				t.Fatalf("%q: key %q with error %v", v, key, err)
			}
			return
		}
		if key == "" || len(key) > maxIdempotencyKeyLength {
			t.Fatalf("%q: key of %d bytes", v, len(key))
		}
		for i := 0; i < len(key); i++ {
			if key[i] < 0x20 || key[i] > 0x7e {
				t.Fatalf("%q: key %q has byte %#x", v, key, key[i])
			}
		}
		quoted := `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(key) + `"`
		if again, err := parseIdempotencyKey([]string{quoted}); again != key || err != nil {
			t.Fatalf("%q: key %q, quoted %s gives %q, %v", v, key, quoted, again, err)
		}
	})
}

func TestPairDigest(t *testing.T) {
	if pairDigest("ab", "c") == pairDigest("a", "bc") {
		t.Error("pairs that concatenate alike share a digest")
	}
	long := strings.Repeat("x", 400) // past the stack buffer
	if d := pairDigest(long, "k"); d == pairDigest(long, "l") || d != pairDigest(strings.Clone(long), "k") {
		t.Error("long pairs")
	}
	key := strings.Repeat("k", maxIdempotencyKeyLength)
	if n := testing.AllocsPerRun(100, func() { pairDigest("acct_0123456789", key) }); n != 0 {
		t.Errorf("pairDigest allocates %v times", n)
	}
}

// fakeClock is a settable clock for the cache tests; they run on one
// goroutine.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func TestIdempotencyCache(t *testing.T) {
	const max = 3
	clk := &fakeClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	c := newIdempotencyCache(time.Minute, clk.Now, max)
	key := func(i int) idemDigest { return pairDigest("acct", strconv.Itoa(i)) }
	fp, other := pairDigest("POST", "/a"), pairDigest("POST", "/b")
	check := func(what string, k, f idemDigest, want idemState) {
		t.Helper()
		if got := c.begin(k, f); got != want {
			t.Fatalf("%s: begin = %d, want %d", what, got, want)
		}
	}
	remember := func(i int) {
		t.Helper()
		check("new key "+strconv.Itoa(i), key(i), fp, idemNew)
		c.end(key(i), true)
	}

	// States.
	check("new", key(0), fp, idemNew)
	check("in flight", key(0), fp, idemBusy)
	check("in flight, other fingerprint", key(0), other, idemReused)
	c.end(key(0), false)
	check("forgotten", key(0), fp, idemNew)
	c.end(key(0), true)
	check("remembered", key(0), fp, idemRemembered)
	check("remembered, other fingerprint", key(0), other, idemReused)
	clk.now = clk.now.Add(time.Minute)
	check("expired", key(0), other, idemNew)
	c.end(key(0), false)
	if len(c.m) != 0 || len(c.order) != 0 {
		t.Fatalf("after expiry: %d entries, %d in order", len(c.m), len(c.order))
	}

	// The bound: past max, the oldest remembered key is forgotten, and the
	// others stay; a key in flight is never forgotten.
	check("held across the bound", key(100), fp, idemNew)
	for i := 1; i <= max+1; i++ {
		remember(i)
		clk.now = clk.now.Add(time.Second)
	}
	if len(c.order) != max {
		t.Fatalf("%d remembered, want %d", len(c.order), max)
	}
	check("still held", key(100), fp, idemBusy)
	for i := 2; i <= max+1; i++ {
		check("kept "+strconv.Itoa(i), key(i), fp, idemRemembered)
	}
	check("evicted", key(1), fp, idemNew) // charged again: never free
	c.end(key(1), false)

	// Expired keys go first, and all at once.
	clk.now = clk.now.Add(time.Minute)
	check("after the window", key(50), fp, idemNew)
	if len(c.order) != 0 || len(c.m) != 2 { // key(50) and key(100), in flight
		t.Fatalf("after the window: %d entries, %d in order", len(c.m), len(c.order))
	}
	c.end(key(100), true)
	check("held key remembered", key(100), fp, idemRemembered)

	// A key taken again after it expired but before it was pruned (the
	// clock went back, so the order is not the order of expiry) is not
	// dropped with its old order entry.
	c = newIdempotencyCache(time.Minute, clk.Now, max)
	remember(1) // expires at T+60s
	clk.now = clk.now.Add(-30 * time.Second)
	remember(2) // expires at T+30s
	clk.now = clk.now.Add(75 * time.Second)
	check("expired behind an unexpired key", key(2), fp, idemNew) // T+45s
	c.end(key(2), true)                                           // expires at T+105s
	clk.now = clk.now.Add(15 * time.Second)                       // T+60s: both old entries go
	check("retaken key kept", key(2), fp, idemRemembered)
	check("first key expired", key(1), fp, idemNew)
}

// TestIdempotencyCacheWindowOverflow checks that a window reaching past
// what Unix nanoseconds can express is remembered, not expired at once.
func TestIdempotencyCacheWindowOverflow(t *testing.T) {
	clk := &fakeClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	c := newIdempotencyCache(time.Duration(1<<63-1), clk.Now, 10)
	k, fp := pairDigest("a", "k"), pairDigest("POST", "/")
	c.begin(k, fp)
	c.end(k, true)
	if got := c.begin(k, fp); got != idemRemembered {
		t.Errorf("begin = %d, want remembered", got)
	}
}
