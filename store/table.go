package store

import (
	"encoding/binary"
	"hash/maphash"
	"sync/atomic"
)

// table is a hash map that readers search without a lock or a write, so
// that lookups never contend; writers must be serialised. It probes
// linearly, is at most half full, and never removes; growing publishes a
// larger copy atomically, and readers of the old one find what it held.
type table[K comparable, V any] struct {
	slots atomic.Pointer[[]atomic.Pointer[tableEntry[K, V]]]
	n     int // entries stored; guarded by the writers' lock
	hash  func(K) uint64
}

type tableEntry[K comparable, V any] struct {
	key K
	val V
}

// minTableSlots is the size of a new table, a power of two.
const minTableSlots = 64

// digestHash hashes a digest: a SHA-256 output is as good as any hash of it.
func digestHash(d Digest) uint64 { return binary.LittleEndian.Uint64(d[:8]) }

// stringHash returns a hash of strings with a random seed.
func stringHash() func(string) uint64 {
	seed := maphash.MakeSeed()
	return func(s string) uint64 { return maphash.String(seed, s) }
}

// get returns the value stored under k, or nil. Do not modify it.
func (t *table[K, V]) get(k K) *V {
	p := t.slots.Load()
	if p == nil {
		return nil
	}
	s := *p
	mask := uint64(len(s) - 1)
	for i := t.hash(k) & mask; ; i = (i + 1) & mask {
		e := s[i].Load()
		if e == nil {
			return nil
		}
		if e.key == k {
			return &e.val
		}
	}
}

// set stores v under k, replacing any value stored under k.
func (t *table[K, V]) set(k K, v V) {
	p := t.slots.Load()
	if p == nil || 2*(t.n+1) > len(*p) {
		p = t.grow(p)
	}
	if t.put(*p, &tableEntry[K, V]{k, v}) {
		t.n++
	}
}

// put stores e in s, which has a free slot, and reports whether it added.
func (t *table[K, V]) put(s []atomic.Pointer[tableEntry[K, V]], e *tableEntry[K, V]) bool {
	mask := uint64(len(s) - 1)
	for i := t.hash(e.key) & mask; ; i = (i + 1) & mask {
		old := s[i].Load()
		if old == nil || old.key == e.key {
			s[i].Store(e)
			return old == nil
		}
	}
}

// grow publishes and returns a copy of old (or nil) at least twice as big.
func (t *table[K, V]) grow(old *[]atomic.Pointer[tableEntry[K, V]]) *[]atomic.Pointer[tableEntry[K, V]] {
	if old == nil {
		old = new([]atomic.Pointer[tableEntry[K, V]])
	}
	s := make([]atomic.Pointer[tableEntry[K, V]], max(minTableSlots, 2*len(*old)))
	for i := range *old {
		if e := (*old)[i].Load(); e != nil {
			t.put(s, e)
		}
	}
	t.slots.Store(&s)
	return &s
}

// each calls f for every entry.
func (t *table[K, V]) each(f func(K, *V)) {
	p := t.slots.Load()
	if p == nil {
		return
	}
	for i := range *p {
		if e := (*p)[i].Load(); e != nil {
			f(e.key, &e.val)
		}
	}
}
