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
	cmd := exec.Command(os.Args[0], "-test.run=^TestSlotHolder$", "-test.count=1")
	cmd.Env = append(os.Environ(), slotHolderEnv+"="+s.prefix+" "+key)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "held" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child process said %q, want held", line)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

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
