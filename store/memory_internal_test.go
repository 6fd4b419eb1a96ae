package store

import (
	"testing"
	"unsafe"
)

// The layout memoryAccount's comment promises: 192 bytes (a size class of
// 64-byte aligned objects), the fields spends write in the first cache
// line, those reads need in the second.
func TestMemoryAccountLayout(t *testing.T) {
	var e memoryAccount
	if s := unsafe.Sizeof(e); s != 192 {
		t.Errorf("memoryAccount is %d bytes, want 192", s)
	}
	if end := unsafe.Offsetof(e.bucket) + unsafe.Sizeof(e.bucket); end > 64 {
		t.Errorf("the fields spends write end at byte %d, past the first cache line", end)
	}
	if o := unsafe.Offsetof(e.put); o != 64 {
		t.Errorf("put at byte %d, want 64", o)
	}
	if end := unsafe.Offsetof(e.hasRefill) + unsafe.Sizeof(e.hasRefill); end > 128 {
		t.Errorf("the fields reads need end at byte %d, past the second cache line", end)
	}
}
