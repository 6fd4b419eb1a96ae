package store

import (
	"testing"
	"unsafe"
)

// The layout memoryAccount's comment promises: a size whose objects are
// 64-byte aligned, and what spends write on a cache line of its own.
func TestMemoryAccountLayout(t *testing.T) {
	var e memoryAccount
	if s := unsafe.Sizeof(e); s%64 != 0 {
		t.Errorf("memoryAccount is %d bytes, not a multiple of 64", s)
	}
	if o := unsafe.Offsetof(e.accountCold); o%64 != 0 || o < unsafe.Sizeof(e.accountHot) {
		t.Errorf("accountCold at byte %d, want the first cache line after accountHot", o)
	}
}
