package store

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blockingLookup is a Callbacks.Lookup that counts its calls, reports each
// call on entered and returns what the test sends on results.
type blockingLookup struct {
	calls   atomic.Int32
	entered chan context.Context
	results chan func() (Key, Account, error)
}

func newBlockingLookup() *blockingLookup {
	return &blockingLookup{entered: make(chan context.Context), results: make(chan func() (Key, Account, error))}
}

func (b *blockingLookup) lookup(ctx context.Context, d Digest) (Key, Account, error) {
	b.calls.Add(1)
	b.entered <- ctx
	return (<-b.results)()
}

// found is a successful result.
func found() (Key, Account, error) { return Key{Prefix: "sk_"}, Account{ID: "acct", Balance: 7}, nil }

func newBlockingStore(t *testing.T, b *blockingLookup, opts *CallbackOptions) *callbackStore {
	t.Helper()
	cb, err := NewCallback(Callbacks{
		Lookup: b.lookup,
		Spend:  func(context.Context, string, int64) (SpendResult, error) { return SpendResult{}, nil },
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return cb.(*callbackStore)
}

// waitForWaiters yields until n callers wait on the flight for d.
func waitForWaiters(s *callbackStore, d Digest, n int) {
	for {
		s.mu.Lock()
		c := s.flights[d]
		joined := c != nil && c.waiters >= n
		s.mu.Unlock()
		if joined {
			return
		}
		runtime.Gosched()
	}
}

type lookupResult struct {
	k   Key
	a   Account
	err error
}

// lookupAsync runs Lookup in a goroutine.
func lookupAsync(ctx context.Context, s *callbackStore, d Digest) <-chan lookupResult {
	ch := make(chan lookupResult, 1)
	go func() {
		k, a, err := s.Lookup(ctx, d)
		ch <- lookupResult{k, a, err}
	}()
	return ch
}

var noCache = &CallbackOptions{TTL: -1, NegativeTTL: -1}

func TestCallbackCollapsesConcurrentMisses(t *testing.T) {
	const callers = 50
	b := newBlockingLookup()
	s := newBlockingStore(t, b, noCache) // no cache: only collapsing saves calls
	d := DigestOf("k")

	leader := lookupAsync(context.Background(), s, d)
	<-b.entered
	var waiters []<-chan lookupResult
	for range callers - 1 {
		waiters = append(waiters, lookupAsync(context.Background(), s, d))
	}
	waitForWaiters(s, d, callers-1)
	b.results <- found

	for _, ch := range append(waiters, leader) {
		r := <-ch
		if r.err != nil || r.a.Balance != 7 || r.k.Digest != d {
			t.Errorf("Lookup = %+v", r)
		}
	}
	if n := b.calls.Load(); n != 1 {
		t.Errorf("Callbacks.Lookup called %d times for %d concurrent misses, want 1", n, callers)
	}
}

// TestCallbackLeaderCanceled checks that the leader's cancellation fails
// the leader only: a waiter retries with its own context.
func TestCallbackLeaderCanceled(t *testing.T) {
	b := newBlockingLookup()
	s := newBlockingStore(t, b, nil)
	d := DigestOf("k")

	leaderCtx, cancel := context.WithCancel(context.Background())
	leader := lookupAsync(leaderCtx, s, d)
	ctx1 := <-b.entered
	waiter := lookupAsync(context.Background(), s, d)
	waitForWaiters(s, d, 1)
	cancel()
	<-ctx1.Done() // the leader's context reached the callback
	b.results <- func() (Key, Account, error) { return Key{}, Account{}, ctx1.Err() }

	if r := <-leader; !errors.Is(r.err, context.Canceled) {
		t.Errorf("leader's Lookup error = %v, want context.Canceled", r.err)
	}
	ctx2 := <-b.entered // the waiter retries as the new leader
	if ctx2.Err() != nil {
		t.Errorf("retry got a done context: %v", ctx2.Err())
	}
	b.results <- found
	if r := <-waiter; r.err != nil || r.a.ID != "acct" {
		t.Errorf("waiter's Lookup = %+v, want the retried result", r)
	}
	if n := b.calls.Load(); n != 2 {
		t.Errorf("Callbacks.Lookup called %d times, want 2", n)
	}
}

// TestCallbackWaiterCanceled checks that a waiter stops waiting when its
// own context ends, without disturbing the leader.
func TestCallbackWaiterCanceled(t *testing.T) {
	b := newBlockingLookup()
	s := newBlockingStore(t, b, nil)
	d := DigestOf("k")

	leader := lookupAsync(context.Background(), s, d)
	<-b.entered
	waiterCtx, cancel := context.WithCancel(context.Background())
	waiter := lookupAsync(waiterCtx, s, d)
	waitForWaiters(s, d, 1)
	cancel()
	if r := <-waiter; !errors.Is(r.err, context.Canceled) {
		t.Errorf("waiter's Lookup error = %v, want context.Canceled", r.err)
	}
	b.results <- found
	if r := <-leader; r.err != nil {
		t.Errorf("leader's Lookup error = %v", r.err)
	}
}

// TestCallbackLookupPanics checks that a panicking callback releases the
// waiters with an error, is not cached, and leaves the store usable.
func TestCallbackLookupPanics(t *testing.T) {
	b := newBlockingLookup()
	s := newBlockingStore(t, b, nil)
	d := DigestOf("k")

	recovered := make(chan any, 1)
	go func() {
		defer func() { recovered <- recover() }()
		s.Lookup(context.Background(), d)
	}()
	<-b.entered
	waiter := lookupAsync(context.Background(), s, d)
	waitForWaiters(s, d, 1)
	b.results <- func() (Key, Account, error) { panic("boom") }

	if p := <-recovered; p != "boom" {
		t.Errorf("leader recovered %v, want the callback's panic", p)
	}
	if r := <-waiter; !errors.Is(r.err, errLookupPanicked) {
		t.Errorf("waiter's Lookup error = %v, want %v", r.err, errLookupPanicked)
	}
	next := lookupAsync(context.Background(), s, d)
	<-b.entered
	b.results <- found
	if r := <-next; r.err != nil {
		t.Errorf("Lookup after a panic: %v", r.err)
	}
}

// TestCallbackInvalidateDuringFlight checks that a lookup in flight when
// its digest is invalidated is not cached.
func TestCallbackInvalidateDuringFlight(t *testing.T) {
	for _, invalidate := range []bool{false, true} {
		b := newBlockingLookup()
		s := newBlockingStore(t, b, nil)
		d := DigestOf("k")

		first := lookupAsync(context.Background(), s, d)
		<-b.entered
		if invalidate {
			s.Invalidate(d)
		}
		b.results <- found
		<-first

		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := s.Lookup(context.Background(), d); err != nil {
				t.Error(err)
			}
		}()
		if invalidate { // not cached: asked again
			<-b.entered
			b.results <- found
		}
		wg.Wait()
		if want := map[bool]int32{false: 1, true: 2}[invalidate]; b.calls.Load() != want {
			t.Errorf("invalidate=%v: Callbacks.Lookup called %d times, want %d", invalidate, b.calls.Load(), want)
		}
	}
}

// floodStore returns a callback store whose Lookup finds the keys in found
// and no other, on a clock that the returned pointer sets.
func floodStore(t *testing.T, opts CallbackOptions, found ...Digest) (*callbackStore, *time.Time) {
	t.Helper()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	opts.Clock = func() time.Time { return now }
	cb, err := NewCallback(Callbacks{
		Lookup: func(_ context.Context, d Digest) (Key, Account, error) {
			if slices.Contains(found, d) {
				return Key{}, Account{ID: "acct"}, nil
			}
			return Key{}, Account{}, errKeyNotFound
		},
		Spend: func(context.Context, string, int64) (SpendResult, error) { return SpendResult{}, nil },
	}, &opts)
	if err != nil {
		t.Fatal(err)
	}
	return cb.(*callbackStore), &now
}

// digestN returns a digest for the number i.
func digestN(i int) Digest {
	var d Digest
	binary.LittleEndian.PutUint64(d[:], uint64(i)+1)
	return d
}

// The cache never holds more than CacheSize entries, and a flood of
// unknown keys evicts them before found ones.
func TestCallbackCacheSize(t *testing.T) {
	known := DigestOf("known")
	s, _ := floodStore(t, CallbackOptions{TTL: time.Hour, NegativeTTL: time.Hour, CacheSize: 100}, known)
	if _, _, err := s.Lookup(context.Background(), known); err != nil {
		t.Fatal(err)
	}
	for i := range 10_000 {
		s.Lookup(context.Background(), digestN(i))
		if len(s.cache) > 100 {
			t.Fatalf("after %d unknown keys the cache holds %d entries, more than its size 100", i+1, len(s.cache))
		}
	}
	if e, ok := s.cache[known]; !ok || e.found == nil {
		t.Errorf("a flood of unknown keys evicted the cached lookup of a known key")
	}
}

// Expired not-found entries are dropped every NegativeTTL, however long
// TTL is.
func TestCallbackSweepsNotFoundEntries(t *testing.T) {
	s, now := floodStore(t, CallbackOptions{TTL: time.Hour, NegativeTTL: time.Second})
	for i := range 1000 {
		s.Lookup(context.Background(), digestN(i))
	}
	*now = now.Add(2 * time.Second)
	s.Lookup(context.Background(), digestN(-2))
	if n := len(s.cache); n != 1 {
		t.Errorf("2s after 1000 unknown keys were cached for 1s, the cache holds %d entries, want 1", n)
	}
}

func TestNewCallbackRejectsNegativeCacheSize(t *testing.T) {
	_, err := NewCallback(Callbacks{
		Lookup: func(context.Context, Digest) (Key, Account, error) { return Key{}, Account{}, nil },
		Spend:  func(context.Context, string, int64) (SpendResult, error) { return SpendResult{}, nil },
	}, &CallbackOptions{CacheSize: -1})
	if err == nil || !strings.Contains(err.Error(), "CacheSize") {
		t.Errorf("NewCallback(CacheSize: -1) = %v, want an error naming CacheSize", err)
	}
}
