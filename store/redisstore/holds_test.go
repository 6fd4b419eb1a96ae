package redisstore

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go402/go402/store"
)

// creditHolderEnv, set in the environment of this test binary re-executed,
// makes TestCreditHolder hold 40 credits of an account and wait to be
// killed: "<prefix> <account>".
const creditHolderEnv = "GO402_TEST_CREDIT_HOLDER"

// TestCreditHolder is the child process of TestHoldOfKilledProcess; run
// alone it does nothing.
func TestCreditHolder(t *testing.T) {
	v := os.Getenv(creditHolderEnv)
	if v == "" {
		t.Skip("run by TestHoldOfKilledProcess")
	}
	prefix, id, _ := strings.Cut(v, " ")
	s := mustNew(t, newClient(t), &Options{Prefix: prefix, Timeout: testTimeout})
	if _, res, err := s.Hold(context.Background(), id, 40, holderLease); err != nil || !res.OK {
		fmt.Printf("failed: %+v %v\n", res, err)
		os.Exit(1)
	}
	fmt.Println("held")
	select {} // until killed
}

// A process killed while it holds credits (40 of 100, a lease of 30 s on the
// Redis server's clock) keeps them held — a spend of 61 is refused — until
// the lease ends: by the server's clock 31 s on, the spend finds all 100.
func TestHoldOfKilledProcess(t *testing.T) {
	c := newClient(t)
	s := newTestStore(t, c, nil)
	ctx := context.Background()
	id := "acct_holder"
	if err := s.PutAccount(ctx, store.Account{ID: id, Balance: 100}); err != nil {
		t.Fatal(err)
	}
	if line := runUntilKilled(t, "TestCreditHolder", creditHolderEnv+"="+s.prefix+" "+id); line != "held" {
		t.Fatalf("the child process said %q, want held", line)
	}
	if res, err := s.Spend(ctx, id, 61); err != nil || res.OK || res.Balance != 60 {
		t.Fatalf("Spend(61) after the kill = %+v, %v; want refused with 60 left", res, err)
	}
	later := time.Now().Add(holderLease + time.Second)
	s.scriptClock = func() time.Time { return later }
	if res, err := s.Spend(ctx, id, 61); err != nil || !res.OK || res.Balance != 39 {
		t.Fatalf("Spend(61) once the lease ended = %+v, %v; want OK with 39 left", res, err)
	}
	if n, err := c.HLen(ctx, s.HoldsRedisKey(id)).Result(); err != nil || n != 0 {
		t.Errorf("%d holds left, %v; want none", n, err)
	}
}

// A fused limit and charge releases the holds whose lease ended before it
// decides, as a plain spend does: 40 of 100 held for 30 s refuse a spend
// of 61 with tokens, and once the lease is over the same spend finds all
// 100.
func TestSpendWithTokensReleasesEndedHolds(t *testing.T) {
	c := newClient(t)
	s := newTestStore(t, c, nil)
	ctx := context.Background()
	id := "acct_fused_holder"
	if err := s.PutAccount(ctx, store.Account{ID: id, Balance: 100}); err != nil {
		t.Fatal(err)
	}
	if _, res, err := s.Hold(ctx, id, 40, holderLease); err != nil || !res.OK {
		t.Fatalf("Hold(40) = %+v, %v", res, err)
	}
	b := store.Bucket{Account: id, Key: "default", Rate: 1, Burst: 10, Cost: 1}
	if res, _, err := s.SpendWithTokens(ctx, id, 61, b); err != nil || res.OK || res.Balance != 60 {
		t.Fatalf("SpendWithTokens(61) while held = %+v, %v; want refused with 60 left", res, err)
	}
	later := time.Now().Add(holderLease + time.Second)
	s.scriptClock = func() time.Time { return later }
	if res, br, err := s.SpendWithTokens(ctx, id, 61, b); err != nil || !res.OK || !br.OK || res.Balance != 39 {
		t.Fatalf("SpendWithTokens(61) once the lease ended = %+v, %+v, %v; want OK with 39 left", res, br, err)
	}
	if n, err := c.HLen(ctx, s.HoldsRedisKey(id)).Result(); err != nil || n != 0 {
		t.Errorf("%d holds left, %v; want none", n, err)
	}
}
