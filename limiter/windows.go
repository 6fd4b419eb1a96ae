package limiter

import (
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go402/go402/internal/tokenbucket"
	"github.com/go402/go402/store"
)

// windowSet is the windows of a policy besides its main token bucket,
// made once per configured set (Options.Windows, each of PlanWindows), and
// once per distinct windows of accounts ([store.Account.Windows]; see
// accountSets).
type windowSet struct {
	ws         []limitWindow
	items      string // `, "name";q=…;w=…` for each window: RateLimit-Policy's part
	valueLen   int    // the most bytes the windows' RateLimit items take
	perAccount bool   // made for one request, beyond accountSets' room: its policies are not kept
	month      bool   // some window counts per month, whose bounds depend on the anchor
	// bounds caches the store buckets of the periods that hold the latest
	// request's time, for an account anchored where that request's was;
	// anchored, those of other anchors.
	bounds   atomic.Pointer[setBounds]
	anchored anchoredBounds
}

// setBounds is the store buckets of a set's windows, right for requests
// at from ≤ now < until (Unix nanoseconds) of accounts anchored at anchor
// (if the set has a month window). Read only.
type setBounds struct {
	from, until int64
	anchor      time.Time
	buckets     []store.Bucket
}

// limitWindow is one window of a set.
type limitWindow struct {
	store.Window
	key     string // its bucket's key in Options.Store: "<Name>/<window name>"
	rPrefix string // `, "name";r=`
	// violated is the window's name alone, a denial's violated-policies
	// when it alone refused.
	violated []string
}

// newWindowSet returns the set of ws, for a limiter whose main window is
// named name; field names them in errors. It returns nil for no windows.
func newWindowSet(name, field string, ws []store.Window) (*windowSet, error) {
	if len(ws) == 0 {
		return nil, nil
	}
	if len(ws) >= store.MaxWindows {
		return nil, fmt.Errorf("limiter: %s has %d windows, at most %d", field, len(ws), store.MaxWindows-1)
	}
	set := &windowSet{ws: make([]limitWindow, len(ws))}
	var items strings.Builder
	seen := map[string]bool{name: true}
	for i, w := range ws {
		if p := w.Problem(); p != "" {
			return nil, fmt.Errorf("limiter: %s: %s", field, p)
		}
		if seen[w.Name] {
			return nil, fmt.Errorf("limiter: %s: window name %q used twice (the main window is %q)", field, w.Name, name)
		}
		seen[w.Name] = true
		set.month = set.month || w.Period == store.PeriodMonth
		q := quote(w.Name)
		set.ws[i] = limitWindow{Window: w, key: name + "/" + w.Name, rPrefix: ", " + q + ";r=", violated: []string{w.Name}}
		set.valueLen += len(set.ws[i].rPrefix) + maxParamsLen
		secs := w.Period.Seconds()
		if w.Period == "" {
			secs = window(store.RateLimit{Rate: w.Rate, Burst: w.Burst})
		}
		items.WriteString(", " + q + ";q=" + strconv.Itoa(w.Burst) + ";w=" + strconv.FormatInt(secs, 10))
	}
	set.items = items.String()
	return set, nil
}

// policyItems returns the set's RateLimit-Policy items ("" for nil).
func (s *windowSet) policyItems() string {
	if s == nil {
		return ""
	}
	return s.items
}

// WindowResult is the outcome of one of a policy's other windows (see
// [Options.Windows]) in a [Result].
type WindowResult struct {
	Name string
	// Allowed reports whether the window held the request's tokens; they
	// were taken only if every window did.
	Allowed   bool
	Quota     int // the window's burst, or its tokens per period
	Remaining int // whole tokens left
	// Reset is how long until the window gains a token (a token bucket) or
	// its period ends (a fixed window); zero when it is full.
	Reset time.Duration
	// RetryAfter is, if the window refused, how long until it holds the
	// request's tokens; negative if it never can; zero if it allowed.
	RetryAfter time.Duration
}

// accountSets keeps the window sets made for accounts' own windows, so
// that the requests of accounts with the same windows share one set, its
// bounds and its policies, as they share a plan's: found by a hash of the
// windows and checked against them, up to maxOverridePolicies sets; beyond
// that, a set is made for each request.
type accountSets struct {
	seed maphash.Seed
	mu   sync.RWMutex
	m    map[uint64]*windowSet
}

func newAccountSets() *accountSets {
	return &accountSets{seed: maphash.MakeSeed(), m: make(map[uint64]*windowSet)}
}

// get returns the set of the windows ws of an account, for a limiter whose
// main window is named name, or an error if they are not valid.
func (as *accountSets) get(name string, ws []store.Window) (*windowSet, error) {
	h := uint64(len(ws))
	for i := range ws {
		h = h*31 + maphash.Comparable(as.seed, ws[i])
	}
	as.mu.RLock()
	s := as.m[h]
	as.mu.RUnlock()
	if s != nil && s.holds(ws) {
		return s, nil
	}
	s, err := newWindowSet(name, "account windows", ws)
	if err != nil {
		return nil, err
	}
	as.mu.Lock()
	if _, taken := as.m[h]; taken || len(as.m) < maxOverridePolicies {
		as.m[h] = s // a colliding set is replaced, not mistaken for s
	} else {
		s.perAccount = true
	}
	as.mu.Unlock()
	return s, nil
}

// holds reports whether s is the set of ws.
func (s *windowSet) holds(ws []store.Window) bool {
	if len(ws) != len(s.ws) {
		return false
	}
	for i := range ws {
		if ws[i] != s.ws[i].Window {
			return false
		}
	}
	return true
}

// anchor returns the anchor of account a's months (zero if none).
func anchor(a *store.Account) time.Time {
	if a != nil && a.Refill != nil {
		return a.Refill.Anchor
	}
	return time.Time{}
}

// moreBuckets returns the store buckets of set's windows for a request of
// account a at now: those cached while the periods that hold now (and a's
// anchor, for a month) are those of the cache, new ones otherwise. The
// caller must not write to them.
func (s *windowSet) moreBuckets(now time.Time, a *store.Account) []store.Bucket {
	return s.boundsAt(now, a).buckets
}

// boundsAt returns the bounds of set's windows for a request of account a
// at now (see moreBuckets): the latest request's, if right for a, else
// those of a's anchor in s.anchored (for a set with a month window), else
// new ones, which both then keep.
func (s *windowSet) boundsAt(now time.Time, a *store.Account) *setBounds {
	ns := now.UnixNano()
	var at time.Time
	if s.month {
		at = anchor(a)
	}
	if c := s.bounds.Load(); c.fits(ns, at) {
		return c
	}
	if s.month {
		if c := s.anchored.get(at); c.fits(ns, at) {
			return c
		}
	}
	c := s.newBounds(now, at)
	if !s.perAccount {
		s.bounds.Store(c)
		if s.month {
			s.anchored.put(at, c)
		}
	}
	return c
}

// newBounds returns the bounds of set's windows at now for the anchor at.
func (s *windowSet) newBounds(now time.Time, at time.Time) *setBounds {
	c := &setBounds{from: math.MinInt64, until: math.MaxInt64, anchor: at,
		buckets: make([]store.Bucket, len(s.ws))}
	for i := range s.ws {
		w := &s.ws[i]
		b := &c.buckets[i]
		*b = store.Bucket{Key: w.key, Rate: w.Rate, Burst: w.Burst}
		if w.Period == "" {
			continue
		}
		b.Rate = 0
		b.Start, b.End = w.Period.Bounds(now, at)
		c.from, c.until = max(c.from, b.Start.UnixNano()), min(c.until, b.End.UnixNano())
	}
	return c
}

// fits reports whether c, which may be nil, holds the bounds of requests
// at ns of accounts anchored at at.
func (c *setBounds) fits(ns int64, at time.Time) bool {
	return c != nil && ns >= c.from && ns < c.until && c.anchor.Equal(at)
}

// maxAnchors is the most billing anchors whose bounds a window set with a
// month window keeps; when it has that many, it forgets them all.
const maxAnchors = 1 << 14

// anchoredBounds are the bounds of a set with a month window by billing
// anchor, so that accounts anchored apart (each on its own day, as
// subscriptions are) find theirs made.
type anchoredBounds struct {
	mu sync.RWMutex
	m  map[anchorKey]*setBounds
}

// anchorKey is an anchor as a map key: time.Time's location would make
// the same instant two keys.
type anchorKey struct {
	sec  int64
	nsec int
}

func keyOf(at time.Time) anchorKey { return anchorKey{at.Unix(), at.Nanosecond()} }

// get returns the bounds kept for anchor at, or nil.
func (ab *anchoredBounds) get(at time.Time) *setBounds {
	ab.mu.RLock()
	defer ab.mu.RUnlock()
	return ab.m[keyOf(at)]
}

// put keeps c as the bounds of anchor at.
func (ab *anchoredBounds) put(at time.Time, c *setBounds) {
	ab.mu.Lock()
	defer ab.mu.Unlock()
	if ab.m == nil || len(ab.m) >= maxAnchors {
		ab.m = make(map[anchorKey]*setBounds)
	}
	ab.m[keyOf(at)] = c
}

// result sets wr to the outcome of a take of cost tokens from w that left
// tokens in it, with left the time until its period ends if it is fixed.
func (w *limitWindow) result(wr *WindowResult, cost int, held bool, tokens float64, left time.Duration) {
	wr.Name, wr.Allowed, wr.Quota = w.Name, held, w.Burst
	wr.Remaining, wr.Reset, wr.RetryAfter = int(max(0, math.Floor(tokens))), 0, 0
	full := tokens >= float64(w.Burst)
	switch {
	case w.Period != "" && !full:
		wr.Reset = max(left, 1)
	case w.Period == "" && !full:
		wr.Reset = tokenbucket.Duration(math.Floor(tokens)+1-tokens, w.Rate)
	}
	switch {
	case held:
	case cost > w.Burst:
		wr.RetryAfter = -1
	case w.Period != "":
		wr.RetryAfter = max(left, 1)
	default:
		wr.RetryAfter = tokenbucket.Duration(float64(cost)-tokens, w.Rate)
	}
}

// storeResult sets wr to w's outcome from a store's take of cost tokens.
func (w *limitWindow) storeResult(wr *WindowResult, cost int, br *store.BucketResult) {
	tokens := float64(br.Remaining)
	if w.Period == "" {
		t := float64(w.Burst) - br.Full.Seconds()*w.Rate
		if t >= tokens && t < tokens+1 {
			tokens = t
		}
	}
	w.result(wr, cost, br.OK, tokens, br.Full)
	if !br.OK && br.Wait > 0 {
		wr.RetryAfter = br.Wait
	}
}

// combine sets res.Allowed and res.RetryAfter from its main window (held
// or not) and res.Windows: allowed if every window held the tokens, else
// retry when every refusing window holds them (never, if one never will).
func (res *Result) combine(mainHeld bool) {
	res.held = mainHeld
	res.Allowed = mainHeld
	never := !mainHeld && res.RetryAfter < 0
	if !mainHeld && !never {
		res.RetryAfter = max(res.RetryAfter, res.Reset)
	}
	for i := range res.Windows {
		w := &res.Windows[i]
		if w.Allowed {
			continue
		}
		res.Allowed = false
		never = never || w.RetryAfter < 0
		res.RetryAfter = max(res.RetryAfter, w.RetryAfter, w.Reset)
	}
	if never {
		res.RetryAfter = -1
	}
}

// violated returns the names of the windows that refused res.
func (l *Limiter) violated(res *Result) []string {
	if len(res.Windows) == 0 {
		return l.violatedPolicies
	}
	var names []string
	if !res.held {
		names = append(names, l.opts.Name)
	}
	for _, w := range res.Windows {
		if !w.Allowed {
			names = append(names, w.Name)
		}
	}
	if len(names) == 1 && !res.held {
		return l.violatedPolicies
	}
	return names
}

// windowTake is what a take asks of one of a policy's other windows in the
// in-process buckets, and learns of it.
type windowTake struct {
	start  int64 // a fixed window's period start, after the table's epoch
	held   bool
	tokens float64
}

// fullWindow returns the state of w full at at.
func fullWindow(w *limitWindow, at int64) tokenbucket.Bucket {
	if w.Period != "" {
		return tokenbucket.Bucket{Tokens: float64(w.Burst), Last: math.MinInt64}
	}
	return tokenbucket.Full(tokenbucket.Limit{Rate: w.Rate, Burst: w.Burst}, at)
}

// remapWindows returns the state of set's windows at at given more, that
// of old's: a window of old with the same name and kind keeps its tokens
// (reconfigured as rate.Limiter would be), any other is full. It reuses
// more's memory when old is nil.
func remapWindows(more []tokenbucket.Bucket, old, set *windowSet, at int64) []tokenbucket.Bucket {
	if set == nil {
		return more[:0]
	}
	next := more[:0]
	if old != nil {
		next = make([]tokenbucket.Bucket, 0, len(set.ws))
	}
	for i := range set.ws {
		w := &set.ws[i]
		tb := fullWindow(w, at)
		if j := old.index(w.Name); j >= 0 && (old.ws[j].Period == "") == (w.Period == "") {
			ow := &old.ws[j]
			tb = more[j]
			if w.Period != "" {
				tb.SetFixedBurst(ow.Burst, w.Burst)
			} else {
				tb.SetLimitAt(tokenbucket.Limit{Rate: ow.Rate, Burst: ow.Burst}, tokenbucket.Limit{Rate: w.Rate, Burst: w.Burst}, at)
			}
		}
		next = append(next, tb)
	}
	return next
}

// index returns the index of the window named name in s, or -1.
func (s *windowSet) index(name string) int {
	if s == nil {
		return -1
	}
	for i := range s.ws {
		if s.ws[i].Name == name {
			return i
		}
	}
	return -1
}

// takeAll takes n tokens at at from b's main window and its other
// windows (those of pol, given in wins), or from none. The caller holds
// b.mu.
func (b *bucket) takeAll(pol *policy, at int64, n int, wins []windowTake) (ok, held bool, tokens float64) {
	l := tokenbucket.Limit(pol.limit)
	held, tokens = b.tb.Check(l, at, n)
	ok = held
	more := *b.more
	for i := range pol.set.ws {
		w, x, tb := &pol.set.ws[i], &wins[i], &more[i]
		if w.Period == "" {
			x.held, x.tokens = tb.Check(tokenbucket.Limit{Rate: w.Rate, Burst: w.Burst}, at, n)
		} else {
			x.tokens = tb.FixedAt(w.Burst, x.start)
			x.held = n <= w.Burst && float64(n) <= x.tokens
		}
		ok = ok && x.held
	}
	if !ok {
		return false, held, tokens
	}
	_, tokens = b.tb.AllowN(l, at, n)
	for i := range pol.set.ws {
		w, x, tb := &pol.set.ws[i], &wins[i], &more[i]
		if w.Period == "" {
			_, x.tokens = tb.AllowN(tokenbucket.Limit{Rate: w.Rate, Burst: w.Burst}, at, n)
		} else {
			_, x.tokens = tb.TakeFixed(w.Burst, x.start, n)
		}
	}
	return true, held, tokens
}
