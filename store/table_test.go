package store

import (
	"strconv"
	"sync"
	"testing"
)

// The table finds every entry it was given, through growths and
// replacements, and nothing else, with digest and with string keys.
func TestTable(t *testing.T) {
	const n = 5000 // many growths past minTableSlots
	digests := table[Digest, string]{hash: digestHash}
	testTable(t, &digests, func(i int) Digest { return DigestOf("sk_table_" + strconv.Itoa(i)) }, n)
	ids := table[string, string]{hash: stringHash()}
	testTable(t, &ids, func(i int) string { return "acct_" + strconv.Itoa(i) }, n)
}

func testTable[K comparable](t *testing.T, tb *table[K, string], key func(int) K, n int) {
	t.Helper()
	if tb.get(key(-1)) != nil {
		t.Fatal("an empty table found an entry")
	}
	for i := range n {
		tb.set(key(i), "a")
	}
	for i := range n / 2 { // replace half
		tb.set(key(i), "b")
	}
	if tb.n != n {
		t.Errorf("n = %d after %d entries and %d replacements, want %d", tb.n, n, n/2, n)
	}
	for i := range n {
		want := "a"
		if i < n/2 {
			want = "b"
		}
		if v := tb.get(key(i)); v == nil || *v != want {
			t.Fatalf("get(%v) = %v, want %s", key(i), v, want)
		}
	}
	for i := n; i < 2*n; i++ {
		if tb.get(key(i)) != nil {
			t.Fatalf("get(%v, never set) found an entry", key(i))
		}
	}
	seen := 0
	tb.each(func(K, *string) { seen++ })
	if seen != n {
		t.Errorf("each visited %d entries, want %d", seen, n)
	}
	if size := len(*tb.slots.Load()); 2*n > size {
		t.Errorf("%d entries in %d slots: more than half full", n, size)
	}
}

// Lookups run without a lock while a writer adds and replaces entries and
// the table grows (run with -race): every entry set before a lookup
// started is found.
func TestTableConcurrentReads(t *testing.T) {
	var mu sync.Mutex // the writers' lock
	tb := table[string, int]{hash: stringHash()}
	const n = 2000
	tb.set("first", 0)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			mu.Lock()
			tb.set(strconv.Itoa(i), i)
			tb.set("first", i)
			mu.Unlock()
		}
	}()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if tb.get("first") == nil {
					t.Error("an entry set before the lookups was not found")
					return
				}
				if v := tb.get(strconv.Itoa(i)); v != nil && *v != i {
					t.Errorf("get(%d) = %d", i, *v)
					return
				}
			}
		}()
	}
	wg.Wait()
}
