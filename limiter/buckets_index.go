package limiter

// index finds a shard's buckets by the hash of their key: open addressing
// with linear probing over a power-of-two array of (hash, bucket) slots,
// at most half full, so that a lookup usually reads one cache line of it.
// Removing an entry moves the entries after it in its probe run back
// (backward-shift deletion), so there are no tombstones and the array never
// needs rebuilding; it needs no probe either, since eviction and sweeps
// walk the array itself and know the slot.
type index struct {
	slots []slot
	live  int // entries
}

// slot is an entry of an index, a bucket and its key's hash, or an empty
// slot (hash emptySlot).
type slot struct {
	hash uint64
	b    *bucket
}

// emptySlot is the hash of an empty slot: a key whose hash it is gets
// another (see keyHash).
const emptySlot = 0

// keyHash adjusts a key's hash so that it is not emptySlot.
func keyHash(h uint64) uint64 {
	if h == emptySlot {
		h++
	}
	return h
}

// init gives the index room for max entries.
func (x *index) init(max int) {
	n := 4
	for n < 2*max {
		n *= 2
	}
	x.slots = make([]slot, n)
}

// home is the slot where the probe for hash h starts. The low bits of h
// pick the shard.
func (x *index) home(h uint64) int { return int(h>>8) & (len(x.slots) - 1) }

// find returns the bucket of key, whose hash is h, or nil and the empty
// slot where it would go. The caller holds the shard's lock.
func (x *index) find(h uint64, key string) (*bucket, int) {
	mask := len(x.slots) - 1
	for i := x.home(h); ; i = (i + 1) & mask {
		switch sl := &x.slots[i]; {
		case sl.hash == h && sl.b.key == key:
			return sl.b, i
		case sl.hash == emptySlot:
			return nil, i
		}
	}
}

// put stores b, whose key's hash is h, in slot i, which find returned
// after the latest removal. The index must hold fewer than half its slots.
func (x *index) put(i int, h uint64, b *bucket) {
	x.slots[i] = slot{hash: h, b: b}
	x.live++
}

// remove empties slot i, moving back into it, and so on, the entries
// after it that probes reach only through it.
func (x *index) remove(i int) {
	mask := len(x.slots) - 1
	for j := (i + 1) & mask; x.slots[j].hash != emptySlot; j = (j + 1) & mask {
		// The entry at j may move to i if i lies on its probe path, from
		// its home up to j.
		if home := x.home(x.slots[j].hash); (j-home)&mask >= (j-i)&mask {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = slot{}
	x.live--
}
