package store

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// Slots is implemented by stores that count requests in flight, so that
// replicas share one concurrency limit (the limiter's
// Options.MaxInFlight uses it).
//
// A slot has a lease: a process that dies holding slots (and so never
// releases them) has them freed when their lease ends, so a crash never
// locks a customer out for good. The lease must outlast the longest
// request, since a slot whose lease ends is free again whether or not its
// request has returned.
type Slots interface {
	// AcquireSlot takes one of the max slots of key for lease if one is
	// free, and returns its id and true; else "" and false (all max are
	// held). max and lease must be positive, or the error wraps
	// [ErrInvalidAmount].
	AcquireSlot(ctx context.Context, key string, max int, lease time.Duration) (slot string, ok bool, err error)
	// ReleaseSlot frees the slot of key that AcquireSlot returned;
	// releasing one that is free already does nothing.
	ReleaseSlot(ctx context.Context, key, slot string) error
}

// maxSlotKeys bounds the keys of a Memory's slot table; a key holding no
// slot is dropped at once, so only keys with requests in flight count.
const maxSlotKeys = 1 << 20

// slotTable holds a [Memory]'s slots: per key, each slot's id and the end
// of its lease in Unix nanoseconds.
type slotTable struct {
	mu   sync.Mutex
	keys map[string]map[uint64]int64
	next uint64
}

// validSlots returns an error wrapping ErrInvalidAmount for a bad max or lease.
func validSlots(max int, lease time.Duration) error {
	if max <= 0 || lease <= 0 {
		return errorf("slots: max and lease must be > 0, got %d and %v: %w", max, lease, ErrInvalidAmount)
	}
	return nil
}

// AcquireSlot implements [Slots] in the process, timed by the store's
// clock. Keys without slots held take no memory; at most about a million
// keys hold slots at once (beyond, AcquireSlot refuses).
func (m *Memory) AcquireSlot(_ context.Context, key string, max int, lease time.Duration) (string, bool, error) {
	if err := validSlots(max, lease); err != nil {
		return "", false, err
	}
	now := m.tick()
	t := &m.slots
	t.mu.Lock()
	defer t.mu.Unlock()
	held := t.keys[key]
	for id, end := range held {
		if end <= now {
			delete(held, id)
		}
	}
	if len(held) >= max || (held == nil && len(t.keys) >= maxSlotKeys) {
		return "", false, nil
	}
	if held == nil {
		if t.keys == nil {
			t.keys = make(map[string]map[uint64]int64)
		}
		held = make(map[uint64]int64, max)
		t.keys[key] = held
	}
	t.next++
	held[t.next] = now + int64(lease)
	return strconv.FormatUint(t.next, 10), true, nil
}

// ReleaseSlot implements [Slots].
func (m *Memory) ReleaseSlot(_ context.Context, key, slot string) error {
	id, err := strconv.ParseUint(slot, 10, 64)
	if err != nil {
		return nil // never one of ours: free already
	}
	t := &m.slots
	t.mu.Lock()
	defer t.mu.Unlock()
	if held := t.keys[key]; held != nil {
		delete(held, id)
		if len(held) == 0 {
			delete(t.keys, key)
		}
	}
	return nil
}
