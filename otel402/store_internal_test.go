package otel402

import (
	"testing"

	"github.com/go402/go402/store"
)

// Every wrapper has exactly the capabilities of its mask, and Store picks
// the wrapper of the store's own capabilities.
func TestWrappersKeepExactlyTheCapabilities(t *testing.T) {
	m, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &instrumented{m: m, s: store.NewMemory(nil)}
	for mask, wrap := range wrappers {
		s := wrap(c)
		_, refunder := s.(store.Refunder)
		_, buckets := s.(store.Buckets)
		_, spender := s.(store.BucketSpender)
		_, admin := s.(store.Admin)
		_, ledger := s.(store.Ledger)
		for _, cap := range []struct {
			bit int
			has bool
			of  string
		}{{capRefunder, refunder, "Refunder"}, {capBuckets, buckets, "Buckets"}, {capBucketSpender, spender, "BucketSpender"},
			{capAdmin, admin, "Admin"}, {capLedger, ledger, "Ledger"}} {
			if want := mask&cap.bit != 0; cap.has != want {
				t.Errorf("wrapper %05b: is a %s = %v, want %v", mask, cap.of, cap.has, want)
			}
		}
		if u, ok := s.(interface{ Unwrap() store.Store }); !ok || u.Unwrap() != c.s {
			t.Errorf("wrapper %05b does not unwrap to the store", mask)
		}
	}
}
