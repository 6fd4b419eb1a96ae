package redisstore

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// slotHolderEnv, set in the environment of this test binary re-executed,
// makes TestSlotHolder acquire slots and hold them until it is killed:
// "<prefix> <key>".
const slotHolderEnv = "GO402_TEST_SLOT_HOLDER"

const holderLease = 30 * time.Second

// TestSlotHolder is the child process of TestSlotsOfKilledProcess; run
// alone it does nothing.
func TestSlotHolder(t *testing.T) {
	v := os.Getenv(slotHolderEnv)
	if v == "" {
		t.Skip("run by TestSlotsOfKilledProcess")
	}
	prefix, key, _ := strings.Cut(v, " ")
	s := mustNew(t, newClient(t), &Options{Prefix: prefix, Timeout: testTimeout})
	for range 3 {
		if _, ok, err := s.AcquireSlot(context.Background(), key, 3, holderLease); err != nil || !ok {
			fmt.Printf("failed: %v %v\n", ok, err)
			os.Exit(1)
		}
	}
	fmt.Println("held")
	select {} // until killed
}

// A process killed while it holds every slot of a key (3 of 3, leases of
// 30 s on the Redis server's clock) keeps them held — a fourth request is
// refused — until their lease ends: by the server's clock 31 s on, a slot
// is free again.
func TestSlotsOfKilledProcess(t *testing.T) {
	c := newClient(t)
	s := newTestStore(t, c, nil)
	key := "acct_killed"
	if line := runUntilKilled(t, "TestSlotHolder", slotHolderEnv+"="+s.prefix+" "+key); line != "held" {
		t.Fatalf("the child process said %q, want held", line)
	}

	ctx := context.Background()
	if _, ok, err := s.AcquireSlot(ctx, key, 3, time.Second); err != nil || ok {
		t.Fatalf("AcquireSlot after the kill: %v, %v; want refused, the dead process's slots still held", ok, err)
	}
	later := time.Now().Add(holderLease + time.Second)
	s.scriptClock = func() time.Time { return later }
	if _, ok, err := s.AcquireSlot(ctx, key, 3, time.Second); err != nil || !ok {
		t.Fatalf("AcquireSlot once the leases ended: %v, %v; want a free slot", ok, err)
	}
}

// runUntilKilled runs this test binary's test name in a child process with
// env added, waits for the first line it prints, kills it and returns that
// line, trimmed.
func runUntilKilled(t *testing.T, name, env string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return strings.TrimSpace(line)
}
