package store

import (
	"encoding/binary"
	"sync/atomic"
)

// keyTable maps digests to the keys of a [Memory]. A lookup takes no lock
// and writes no shared memory, so lookups on different cores never contend,
// not even for one key, as they would for a read lock; writers (PutKey,
// CreateKey, RevokeKey, LoadFile) are serialised by Memory.mu.
//
// It is an open-addressing table with linear probing, at most half full,
// whose slots hold pointers that are set but never cleared (keys are
// replaced, never removed). Growing builds a larger table and publishes it
// atomically; a lookup still on the old one finds what that one held.
type keyTable struct {
	slots atomic.Pointer[[]atomic.Pointer[memoryKey]]
	n     int // keys stored; guarded by the writers' lock
}

// minKeySlots is the size of a new table, a power of two.
const minKeySlots = 64

// keySlot returns where d's probe sequence starts in a table of size slots
// (a power of two). A digest is a SHA-256 output, as good as any hash of it.
func keySlot(d *Digest, size int) int {
	return int(binary.LittleEndian.Uint64(d[:8]) & uint64(size-1))
}

// get returns the key with digest d, or nil.
func (t *keyTable) get(d *Digest) *memoryKey {
	p := t.slots.Load()
	if p == nil {
		return nil
	}
	s := *p
	for i := keySlot(d, len(s)); ; i = (i + 1) & (len(s) - 1) {
		k := s[i].Load()
		if k == nil || k.key.Digest == *d {
			return k
		}
	}
}

// set stores k, replacing any key with the same digest. The writers' lock
// must be held.
func (t *keyTable) set(k *memoryKey) {
	p := t.slots.Load()
	if p == nil || 2*(t.n+1) > len(*p) {
		p = t.grow(p)
	}
	if putSlot(*p, k) {
		t.n++
	}
}

// putSlot stores k in s, which has a free slot, and reports whether it was
// added rather than replacing a key with the same digest.
func putSlot(s []atomic.Pointer[memoryKey], k *memoryKey) bool {
	for i := keySlot(&k.key.Digest, len(s)); ; i = (i + 1) & (len(s) - 1) {
		old := s[i].Load()
		if old == nil || old.key.Digest == k.key.Digest {
			s[i].Store(k)
			return old == nil
		}
	}
}

// grow publishes a table twice the size of old (or of minKeySlots, if old
// is nil) holding old's keys, and returns it.
func (t *keyTable) grow(old *[]atomic.Pointer[memoryKey]) *[]atomic.Pointer[memoryKey] {
	size := minKeySlots
	if old != nil {
		size = 2 * len(*old)
	}
	s := make([]atomic.Pointer[memoryKey], size)
	t.each(func(k *memoryKey) { putSlot(s, k) })
	t.slots.Store(&s)
	return &s
}

// each calls f for every stored key.
func (t *keyTable) each(f func(*memoryKey)) {
	p := t.slots.Load()
	if p == nil {
		return
	}
	for i := range *p {
		if k := (*p)[i].Load(); k != nil {
			f(k)
		}
	}
}
