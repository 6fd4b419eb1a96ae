package store

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/go402/go402/internal/tokenbucket"
)

// bucketLinger is the least time between sweeps; a test shortens it.
var bucketLinger = time.Minute

// maxBucketLife caps a stand-alone bucket's expiry, against overflow.
const maxBucketLife = 100 * 365 * 24 * time.Hour

// memoryBucket is a window of a [Memory] — a token bucket or a fixed
// window — used under its owner's lock (the account's, for an account's
// window). Times are Unix nanoseconds.
type memoryBucket struct {
	key string
	// limit is the window's; Burst is zero in an account's unused first
	// bucket, Rate zero for a fixed window.
	limit tokenbucket.Limit
	tb    tokenbucket.Bucket
}

// standaloneBucket is a bucket of Memory.standalone, with the windows of
// its More.
type standaloneBucket struct {
	mu      sync.Mutex
	dead    bool  // it left the table: a take holding it looks again
	expires int64 // when it is full again
	b       memoryBucket
	more    []*memoryBucket
}

// windowLimit is the limit of window w: Rate zero if it is fixed.
func windowLimit(w *Bucket) tokenbucket.Limit {
	if w.fixed() {
		return tokenbucket.Limit{Burst: w.Burst}
	}
	return tokenbucket.Limit{Rate: w.Rate, Burst: w.Burst}
}

// unixNanos returns t in Unix nanoseconds, the zero time as the earliest.
func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixNano()
}

// newMemoryBucket returns the full window w.
func newMemoryBucket(w *Bucket, now int64) memoryBucket {
	l := windowLimit(w)
	mb := memoryBucket{key: w.Key, limit: l, tb: tokenbucket.Full(l, now)}
	if l.Rate == 0 {
		mb.tb.Last = math.MinInt64 // before every period: full in any
	}
	return mb
}

// reconfigure gives mb w's limit as of now, as rate.Limiter does; a
// window that changes kind is a new one.
func (mb *memoryBucket) reconfigure(w *Bucket, now int64) tokenbucket.Limit {
	l := windowLimit(w)
	switch old := mb.limit; {
	case l == old:
		return l
	case (l.Rate == 0) != (old.Rate == 0):
		*mb = newMemoryBucket(w, now)
	case l.Rate == 0:
		mb.tb.SetFixedBurst(old.Burst, l.Burst)
	default:
		mb.tb.SetLimitAt(old, l, now)
	}
	mb.limit = l
	return l
}

// check reports whether mb, given w's limit, holds cost tokens at now,
// and returns the tokens it holds.
func (mb *memoryBucket) check(w *Bucket, cost int, now int64) (bool, float64) {
	l := mb.reconfigure(w, now)
	if l.Rate != 0 {
		return mb.tb.Check(l, now, cost)
	}
	tokens := mb.tb.FixedAt(l.Burst, unixNanos(w.Start))
	return cost <= l.Burst && float64(cost) <= tokens, tokens
}

// takeChecked takes the cost tokens that check found in mb, and returns
// the tokens left.
func (mb *memoryBucket) takeChecked(w *Bucket, cost int, now int64) float64 {
	var tokens float64
	if l := mb.limit; l.Rate != 0 {
		_, tokens = mb.tb.AllowN(l, now, cost)
	} else {
		_, tokens = mb.tb.TakeFixed(l.Burst, unixNanos(w.Start), cost)
	}
	return tokens
}

// result is the outcome of a take of cost tokens from mb, window w, that
// left it holding tokens at now; held is whether it held the cost.
func (mb *memoryBucket) result(w *Bucket, cost int, held bool, tokens float64, now int64) BucketResult {
	if mb.limit.Rate != 0 {
		return bucketResultOf(tokenbucket.ResultOf(mb.limit, cost, held, tokens))
	}
	left := time.Duration(unixNanos(w.End) - now)
	return bucketResultOf(tokenbucket.FixedResult(mb.limit.Burst, cost, held, tokens, left))
}

// window returns the window i of b: b itself, then its More.
func window(b *Bucket, i int) *Bucket {
	if i == 0 {
		return b
	}
	return &b.More[i-1]
}

// windowOwner finds the windows of an account (e) or of a stand-alone
// bucket (sb), a full one if new at now, under its owner's lock.
type windowOwner struct {
	e   *memoryAccount
	sb  *standaloneBucket
	now int64
}

func (o *windowOwner) find(w *Bucket) *memoryBucket {
	if o.e != nil {
		return o.e.accountBucketLocked(w, o.now)
	}
	return o.sb.window(w, o.now)
}

// takeWindows takes b.Cost tokens at now from every window of b, which
// find returns, or from none: it checks them all, then takes from all if
// each held the tokens and commit(true) agrees (a debit made with them),
// else calls commit(false). The caller holds the windows' lock.
func takeWindows(b *Bucket, now int64, find *windowOwner, commit func(bool) bool) BucketResult {
	var (
		arr  [4]windowState // a policy of up to four windows, in place
		wins = arr[:0]
	)
	n, ok := 1+len(b.More), true
	if n > len(arr) {
		wins = make([]windowState, 0, n)
	}
	wins = wins[:n]
	for i := range wins {
		w, x := window(b, i), &wins[i]
		x.mb = find.find(w)
		x.held, x.tokens = x.mb.check(w, b.Cost, now)
		ok = ok && x.held
	}
	if commit(ok) {
		for i := range wins {
			wins[i].tokens = wins[i].mb.takeChecked(window(b, i), b.Cost, now)
		}
	}
	r := wins[0].mb.result(b, b.Cost, wins[0].held, wins[0].tokens, now)
	r.OK = ok
	if n > 1 {
		r.More = moreResults(n - 1)
		for i := 1; i < n; i++ {
			x := &wins[i]
			r.More[i-1] = x.mb.result(window(b, i), b.Cost, x.held, x.tokens, now)
		}
	}
	return r
}

// windowState is what takeWindows learns of one window.
type windowState struct {
	mb     *memoryBucket
	held   bool
	tokens float64
}

// resultSlab is memory that the BucketResult.More of windowed takes are
// cut from, front to back: a part once cut belongs to the one result it
// was cut for, so one allocation serves many takes. A slab is used by one
// take at a time; resultSlabs holds those with room left.
type resultSlab struct {
	rs [64]BucketResult
	n  int // results cut
}

var resultSlabs = sync.Pool{New: func() any { return new(resultSlab) }}

// moreResults returns memory for n results, cut from a slab.
func moreResults(n int) []BucketResult {
	if n > len(resultSlab{}.rs) {
		return make([]BucketResult, n)
	}
	s := resultSlabs.Get().(*resultSlab)
	if len(s.rs)-s.n < n {
		s = new(resultSlab) // the old one lives on in the results cut from it
	}
	r := s.rs[s.n : s.n+n : s.n+n]
	s.n += n
	resultSlabs.Put(s)
	return r
}

// takeAll is the commit of a take without a debit.
func takeAll(ok bool) bool { return ok }

// accountBucketLocked returns e's bucket b.Key, a full one if new; e.mu is held.
func (e *memoryAccount) accountBucketLocked(b *Bucket, now int64) *memoryBucket {
	switch {
	case e.bucket.key == b.Key && e.bucket.limit.Burst != 0:
		return &e.bucket
	case e.bucket.limit.Burst == 0:
		e.bucket = newMemoryBucket(b, now)
		return &e.bucket
	}
	for _, mb := range e.buckets {
		if mb.key == b.Key {
			return mb
		}
	}
	mb := newMemoryBucket(b, now)
	e.buckets = append(e.buckets, &mb)
	return &mb
}

// TakeTokens implements [Buckets], timed by the store's clock. Rate must be
// positive (+Inf allows everything), Burst positive and Cost non-negative, or
// the error wraps [ErrInvalidAmount]; an Account over 256 bytes is refused.
// Buckets are not saved by [Memory.SaveFile].
//
// An account's bucket lives as long as the account, and is the one
// [Memory.SpendWithTokens] takes from. Other buckets (of unknown accounts too,
// as on Redis) stand alone, dropped at most a minute after they are full again,
// which changes no decision. To limit by client address in one process, prefer
// the limiter's own buckets, whose number is capped.
func (m *Memory) TakeTokens(_ context.Context, b Bucket) (BucketResult, error) {
	if err := validateBucket(&b); err != nil {
		return BucketResult{}, err
	}
	if b.unlimited() {
		return BucketResult{OK: true, Remaining: b.Burst}, nil
	}
	if len(b.Account) > maxIDLength {
		return BucketResult{}, errBadAccountID
	}
	if e, err := m.account(b.Account); err == nil {
		now := m.tick()
		e.mu.Lock()
		defer e.mu.Unlock()
		return takeWindows(&b, now, &windowOwner{e: e, now: now}, takeAll), nil
	}
	if b.Account != "" { // an unknown account's: apart from other stand-alone buckets
		b.Key = "\x00" + b.Account + "\x00" + b.Key
	}
	return m.standalone.take(&b, m.tick), nil
}

// standaloneTable holds a [Memory]'s stand-alone buckets.
type standaloneTable struct {
	mu        sync.Mutex
	m         map[string]*standaloneBucket
	nextSweep int64
}

// take takes b.Cost tokens from the stand-alone bucket b.Key at tick().
func (t *standaloneTable) take(b *Bucket, tick func() int64) BucketResult {
	for {
		now := tick()
		sb := t.get(b, now)
		sb.mu.Lock()
		if sb.dead {
			sb.mu.Unlock()
			continue
		}
		r := takeWindows(b, now, &windowOwner{sb: sb, now: now}, takeAll)
		// Set under the lock, so that the latest take sets the expiry.
		full := r.Full
		for _, m := range r.More {
			full = max(full, m.Full)
		}
		sb.expires = now + int64(min(full, maxBucketLife))
		sb.mu.Unlock()
		return r
	}
}

// window returns sb's window w, a full one at now if new; sb.mu is held.
func (sb *standaloneBucket) window(w *Bucket, now int64) *memoryBucket {
	if w.Key == sb.b.key {
		return &sb.b
	}
	for _, mb := range sb.more {
		if mb.key == w.Key {
			return mb
		}
	}
	mb := newMemoryBucket(w, now)
	sb.more = append(sb.more, &mb)
	return &mb
}

// get returns the stand-alone bucket b.Key, making a full one if need be,
// which sweeps if bucketLinger has passed: a flood pays a constant share.
func (t *standaloneTable) get(b *Bucket, now int64) *standaloneBucket {
	t.mu.Lock()
	defer t.mu.Unlock()
	if sb := t.m[b.Key]; sb != nil {
		return sb
	}
	if now >= t.nextSweep {
		t.nextSweep = now + int64(bucketLinger)
		for k, sb := range t.m {
			sb.mu.Lock()
			if sb.expires <= now {
				sb.dead = true
				delete(t.m, k)
			}
			sb.mu.Unlock()
		}
	}
	sb := &standaloneBucket{b: newMemoryBucket(b, now), expires: now}
	t.m[b.Key] = sb
	return sb
}

// SpendWithTokens implements [BucketSpender] with the account's bucket b.
func (m *Memory) SpendWithTokens(_ context.Context, accountID string, cost int64, b Bucket) (SpendResult, BucketResult, error) {
	if cost < 0 {
		return SpendResult{}, BucketResult{}, errNegativeCost
	}
	if err := checkOwnBucket("spend with tokens", accountID, &b); err != nil {
		return SpendResult{}, BucketResult{}, err
	}
	var sr SpendResult
	br, err := m.debitWithTokens(accountID, &b, func(e *memoryAccount, next time.Time, allowed bool) bool {
		sr = m.spendLocked(e, next, cost, allowed)
		return sr.OK
	})
	return sr, br, err
}

// checkOwnBucket checks that b is valid and the bucket of the account
// accountID, which op debits.
func checkOwnBucket(op, accountID string, b *Bucket) error {
	if b.Account != accountID {
		return errorf("%s: bucket %q belongs to account %q, not %q: set its Account to the account it debits",
			op, b.Key, b.Account, accountID)
	}
	return validateBucket(b)
}

// debitWithTokens calls debit under the lock of the account accountID,
// after applying its refill (next is the next refill time), with whether
// the windows of b, a valid bucket of it, allow the debit, and takes b.Cost
// tokens from every window only if debit reports that it debited: the one
// atomic step of [Memory.SpendWithTokens] and [Memory.HoldWithTokens].
func (m *Memory) debitWithTokens(accountID string, b *Bucket, debit func(e *memoryAccount, next time.Time, allowed bool) bool) (BucketResult, error) {
	e, err := m.account(accountID)
	if err != nil {
		return BucketResult{}, err
	}
	now := m.tick() // read before locking, to keep the lock short
	e.mu.Lock()
	defer e.mu.Unlock()
	next := m.applyRefillLocked(e)
	if b.unlimited() { // a bucket that never refuses: a plain debit
		debit(e, next, true)
		return BucketResult{OK: true, Remaining: b.Burst}, nil
	}
	return takeWindows(b, now, &windowOwner{e: e, now: now}, func(ok bool) bool {
		return debit(e, next, ok)
	}), nil
}
