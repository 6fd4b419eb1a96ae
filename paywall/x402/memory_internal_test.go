package x402

import (
	"strconv"
	"testing"
	"time"
)

func TestMemoryBounded(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	c := newMemory(10*time.Minute, func() time.Time { return now })
	if c.max != maxRemembered {
		t.Fatalf("max = %d", c.max)
	}
	c.max = 1000
	for i := 0; i < c.max+100; i++ {
		k := sum(strconv.Itoa(i))
		if _, busy := c.begin(k); busy {
			t.Fatal("a new payment is busy")
		}
		c.finish(k, c.remember(record{outcome: settled}))
	}
	c.begin(sum("one more"))
	if n := len(c.m); n > c.max+1 {
		t.Errorf("%d payments remembered, want at most %d", n, c.max+1)
	}
	if rec, _ := c.begin(sum(strconv.Itoa(c.max + 99))); rec.outcome != settled {
		t.Error("the newest payment was forgotten")
	}

	now = now.Add(10 * time.Minute)
	c.begin(sum("after the window"))
	if n := len(c.m); n > 3 { // the two in flight and the new one
		t.Errorf("%d payments remembered after the window", n)
	}
}

func TestMemoryForgetsUnsettled(t *testing.T) {
	c := newMemory(time.Minute, time.Now)
	k := sum("payment")
	c.begin(k)
	if _, busy := c.begin(k); !busy {
		t.Error("a payment in flight is not busy")
	}
	c.finish(k, record{})
	if rec, busy := c.begin(k); busy || rec.outcome != unsettled {
		t.Errorf("after a refusal: %+v, busy %v", rec, busy)
	}
}
