package tokenbucket

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// start is the time the comparisons begin, in Unix nanoseconds.
var start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// twin is a Bucket and the rate.Limiter it must match, with its limit.
type twin struct {
	t   *testing.T
	b   Bucket
	lim *rate.Limiter
	l   Limit
	now int64
}

func newTwin(t *testing.T, l Limit) *twin {
	return &twin{t: t, b: Full(l, start), lim: rate.NewLimiter(rate.Limit(l.Rate), l.Burst), l: l, now: start}
}

// step advances the clock by d, gives both the limit l as of then, and
// takes n from both, failing unless they agree exactly.
func (w *twin) step(d time.Duration, l Limit, n int) {
	w.t.Helper()
	w.now += int64(d)
	at := time.Unix(0, w.now)
	if l != w.l {
		w.b.SetLimitAt(w.l, l, w.now)
		if l.Rate != w.l.Rate {
			w.lim.SetLimitAt(at, rate.Limit(l.Rate))
		}
		if l.Burst != w.l.Burst {
			w.lim.SetBurstAt(at, l.Burst)
		}
		w.l = l
	}
	if got, want := w.b.TokensAt(l, w.now), w.lim.TokensAt(at); got != want {
		w.t.Fatalf("%+v after %v: TokensAt %v, rate.Limiter %v", l, d, got, want)
	}
	checkOK, _ := w.b.Check(l, w.now, n)
	ok, tokens := w.b.AllowN(l, w.now, n)
	wantOK := w.lim.AllowN(at, n)
	if want := w.lim.TokensAt(at); ok != wantOK || checkOK != ok || tokens != want {
		w.t.Fatalf("%+v after %v: AllowN(%d) = %v, %v (Check %v); rate.Limiter %v, %v", l, d, n, ok, tokens, checkOK, wantOK, want)
	}
}

// A table of cases at the edges: exact refills, costs of zero, of the
// burst and above it, tiny and huge rates, and limit changes.
func TestMatchesRate(t *testing.T) {
	type op struct {
		d time.Duration
		l Limit
		n int
	}
	l1, l2, l3 := Limit{Rate: 1, Burst: 1}, Limit{Rate: 10, Burst: 5}, Limit{Rate: 0.5, Burst: 3}
	tiny, huge := Limit{Rate: 1e-9, Burst: 2}, Limit{Rate: 1 << 30, Burst: 1 << 30}
	for name, ops := range map[string][]op{
		"refill exactly": {{0, l1, 1}, {0, l1, 1}, {time.Second - 1, l1, 1}, {1, l1, 1}, {time.Second, l1, 2}},
		"zero costs":     {{0, l2, 0}, {0, l2, 5}, {0, l2, 0}, {0, l2, 1}, {time.Millisecond, l2, 0}},
		"above burst":    {{0, l3, 4}, {time.Hour, l3, 4}, {0, l3, 3}, {0, l3, 0}},
		"tiny rate":      {{0, tiny, 2}, {time.Hour, tiny, 1}, {1 << 62, tiny, 1}},
		"huge rate":      {{0, huge, 1 << 30}, {1, huge, 2}, {1, huge, 1 << 29}, {time.Second, huge, 1 << 30}},
		"limit changes": {{0, l2, 5}, {100 * time.Millisecond, l3, 1}, {time.Second, l1, 1},
			{time.Second, l2, 3}, {0, l3, 3}, {3 * time.Second, l2, 5}, {0, Limit{Rate: 10, Burst: 50}, 1},
			{time.Second, Limit{Rate: 10, Burst: 50}, 20}, {0, l2, 1}},
	} {
		t.Run(name, func(t *testing.T) {
			w := newTwin(t, ops[0].l)
			for _, o := range ops {
				w.step(o.d, o.l, o.n)
			}
		})
	}
}

// limits are the limits FuzzMatchesRate chooses from.
var limits = []Limit{
	{Rate: 1, Burst: 1}, {Rate: 10, Burst: 5}, {Rate: 0.5, Burst: 3}, {Rate: 1000, Burst: 100},
	{Rate: 3.7, Burst: 20}, {Rate: 1e-3, Burst: 1 << 40}, {Rate: 1 << 30, Burst: 1 << 30}, {Rate: 0.7, Burst: 7},
}

// steps are the clock steps FuzzMatchesRate scales.
var steps = []time.Duration{0, 1, time.Microsecond, time.Millisecond, time.Second, time.Hour}

// Random sequences of clock steps, limit changes and takes give exactly
// the decisions and tokens of a rate.Limiter.
func FuzzMatchesRate(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte("\x01\x00\x02\x10\x07\x33\xff\x41\x05\x05\x05\x05"))
	f.Add([]byte("\x83\x02\x91\x44\x09\xa0\x07\x13\x62\x38\xfe\x01\x00\x7f"))
	f.Fuzz(func(t *testing.T, ops []byte) {
		w := newTwin(t, limits[0])
		l := w.l
		for len(ops) >= 4 {
			op := binary.LittleEndian.Uint32(ops)
			ops = ops[4:]
			if op&0xf == 0 {
				l = limits[op>>4%uint32(len(limits))]
			}
			d := steps[op>>8%uint32(len(steps))] * time.Duration(op>>12&0xff)
			n := int(op >> 20 % uint32(min(l.Burst+2, 4096)))
			w.step(d, l, n)
		}
	})
}

// A time before the bucket's last update counts as that update: the
// bucket neither gains tokens nor moves its clock back.
func TestTimeNeverRunsBackwards(t *testing.T) {
	l := Limit{Rate: 1, Burst: 10}
	b := Full(l, 100*int64(time.Second))
	if ok, tokens := b.AllowN(l, 100*int64(time.Second), 10); !ok || tokens != 0 {
		t.Fatalf("AllowN = %v, %v", ok, tokens)
	}
	if ok, tokens := b.AllowN(l, 90*int64(time.Second), 1); ok || tokens != 0 || b.Last != 100*int64(time.Second) {
		t.Fatalf("a take before the last one: %v, %v, last %v", ok, tokens, b.Last)
	}
	b.SetLimitAt(l, Limit{Rate: 2, Burst: 10}, 50*int64(time.Second))
	if b.Last != 100*int64(time.Second) || b.Tokens != 0 {
		t.Fatalf("SetLimitAt before the last take: %+v", b)
	}
	if got := b.TokensAt(Limit{Rate: 2, Burst: 10}, 101*int64(time.Second)); got != 2 {
		t.Fatalf("one second later at the new rate: %v tokens, want 2", got)
	}
}

func TestResultOf(t *testing.T) {
	l := Limit{Rate: 2, Burst: 4} // a token every 500 ms
	for _, c := range []struct {
		cost   int
		ok     bool
		tokens float64
		want   Result
	}{
		{1, true, 3, Result{OK: true, Remaining: 3, Full: 500 * time.Millisecond}},
		{1, true, 4, Result{OK: true, Remaining: 4}},
		{2, false, 1.5, Result{Remaining: 1, Wait: 250 * time.Millisecond, Full: 1250 * time.Millisecond}},
		{5, false, 4, Result{Remaining: 4, Wait: -1}},
		{1, false, -0.5, Result{Wait: 750 * time.Millisecond, Full: 2250 * time.Millisecond}},
	} {
		if got := ResultOf(l, c.cost, c.ok, c.tokens); got != c.want {
			t.Errorf("ResultOf(%d, %v, %v) = %+v, want %+v", c.cost, c.ok, c.tokens, got, c.want)
		}
	}
	if got := Duration(1, 1e-300); got != math.MaxInt64 {
		t.Errorf("Duration of a token at 1e-300/s = %v, want the largest Duration", got)
	}
	if got := Duration(math.NaN(), 1); got != 0 {
		t.Errorf("Duration(NaN) = %v, want 0", got)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		rate        float64
		burst, cost int
		ok          bool
	}{
		{1, 1, 0, true}, {math.Inf(1), 1, 5, true}, {1e-300, 1 << 40, 1, true},
		{0, 1, 1, false}, {-1, 1, 1, false}, {math.NaN(), 1, 1, false}, {math.Inf(-1), 1, 1, false},
		{1, 0, 1, false}, {1, -1, 1, false}, {1, 1, -1, false},
	} {
		if err := Validate(c.rate, c.burst, c.cost); (err == nil) != c.ok {
			t.Errorf("Validate(%v, %d, %d) = %v, want ok %v", c.rate, c.burst, c.cost, err, c.ok)
		}
	}
}

// The arithmetic of a take allocates nothing.
func TestAllocs(t *testing.T) {
	l := Limit{Rate: 10, Burst: 5}
	b := Full(l, 0)
	var now int64
	if n := testing.AllocsPerRun(100, func() { now += 1e6; b.AllowN(l, now, 1) }); n != 0 {
		t.Errorf("%v allocations per take", n)
	}
}
