package limiter

// index finds a shard's buckets by their key's hash: linear probing over a
// power-of-two array at most half full, so a lookup usually reads one cache
// line. Removal shifts its probe run back: no tombstones, no rebuilding.
type index struct {
	slots []slot
	live  int // entries
}

// slot is a bucket and its key's hash, or empty (hash emptySlot).
type slot struct {
	hash uint64
	b    *bucket
}

// emptySlot is the hash of an empty slot, which keyHash gives no key.
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

// home is the slot where the probe for h starts (h's low bits pick the shard).
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

// put stores b, of hash h, in slot i, which find returned after the latest
// removal. The index must hold fewer than half its slots.
func (x *index) put(i int, h uint64, b *bucket) {
	x.slots[i] = slot{hash: h, b: b}
	x.live++
}

// remove empties slot i, moving back the entries after it that probes
// reach only through it.
func (x *index) remove(i int) {
	mask := len(x.slots) - 1
	for j := (i + 1) & mask; x.slots[j].hash != emptySlot; j = (j + 1) & mask {
		// The entry at j moves to i if i is on its probe path, home to j.
		if home := x.home(x.slots[j].hash); (j-home)&mask >= (j-i)&mask {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = slot{}
	x.live--
}
