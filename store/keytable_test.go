package store

import (
	"strconv"
	"sync"
	"testing"
)

// The table finds every key it was given, through growths and
// replacements, and nothing else.
func TestKeyTable(t *testing.T) {
	var kt keyTable
	const n = 5000 // many growths past minKeySlots
	digest := func(i int) Digest { return DigestOf("sk_table_" + strconv.Itoa(i)) }
	if kt.get(&Digest{1}) != nil {
		t.Fatal("an empty table found a key")
	}
	for i := range n {
		kt.set(&memoryKey{key: Key{Digest: digest(i), AccountID: "a"}})
	}
	for i := range n / 2 { // replace half
		kt.set(&memoryKey{key: Key{Digest: digest(i), AccountID: "b"}})
	}
	if kt.n != n {
		t.Errorf("n = %d after %d keys and %d replacements, want %d", kt.n, n, n/2, n)
	}
	for i := range n {
		d := digest(i)
		want := "a"
		if i < n/2 {
			want = "b"
		}
		if k := kt.get(&d); k == nil || k.key.Digest != d || k.key.AccountID != want {
			t.Fatalf("get(key %d) = %+v, want the key of account %s", i, k, want)
		}
	}
	for i := n; i < 2*n; i++ {
		if d := digest(i); kt.get(&d) != nil {
			t.Fatalf("get(key %d, never set) found a key", i)
		}
	}
	seen := 0
	kt.each(func(*memoryKey) { seen++ })
	if seen != n {
		t.Errorf("each visited %d keys, want %d", seen, n)
	}
	if size := len(*kt.slots.Load()); 2*n > size {
		t.Errorf("%d keys in %d slots: more than half full", n, size)
	}
}

// Lookups run without a lock while a writer adds and replaces keys and the
// table grows (run with -race): every key set before a lookup started is
// found.
func TestKeyTableConcurrentReads(t *testing.T) {
	var (
		kt keyTable
		mu sync.Mutex // the writers' lock
	)
	const n = 2000
	digest := func(i int) Digest { return DigestOf("sk_concurrent_" + strconv.Itoa(i)) }
	first := digest(-1)
	kt.set(&memoryKey{key: Key{Digest: first}})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			mu.Lock()
			kt.set(&memoryKey{key: Key{Digest: digest(i)}})
			kt.set(&memoryKey{key: Key{Digest: first, Revoked: i%2 == 0}})
			mu.Unlock()
		}
	}()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if kt.get(&first) == nil {
					t.Error("a key set before the lookups was not found")
					return
				}
				d := digest(i)
				if k := kt.get(&d); k != nil && k.key.Digest != d {
					t.Errorf("get returned the key of another digest")
					return
				}
			}
		}()
	}
	wg.Wait()
}
