package store

import (
	"context"
	"time"
)

// memoryHold is a hold of an account in memory.
type memoryHold struct {
	amount  int64
	expires time.Time
}

// Hold implements [Holder].
func (m *Memory) Hold(_ context.Context, accountID string, amount int64, lease time.Duration) (Hold, SpendResult, error) {
	if err := checkHold(amount, lease); err != nil {
		return Hold{}, SpendResult{}, err
	}
	e, err := m.account(accountID)
	if err != nil {
		return Hold{}, SpendResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	h, r := m.holdLocked(e, Hold{AccountID: accountID, Amount: amount}, lease, m.applyRefillLocked(e), true)
	return h, r, nil
}

// holdLocked holds h.Amount of e, the account h.AccountID, for lease if
// allowed and covered, under e.mu after refilling (next is the next refill
// time), and returns h with its ID and expiry, or zero if refused.
func (m *Memory) holdLocked(e *memoryAccount, h Hold, lease time.Duration, next time.Time, allowed bool) (Hold, SpendResult) {
	r := m.spendLocked(e, next, h.Amount, allowed) // counts against the spend cap
	if !r.OK {
		return Hold{}, r
	}
	if e.holds == nil {
		e.holds = make(map[int64]memoryHold)
	}
	h.ID, h.Expires = m.holdSeq.Add(1), m.now().Add(lease)
	e.holds[h.ID] = memoryHold{h.Amount, h.Expires}
	return h, r
}

// HoldWithTokens implements [BucketHolder] with the account's bucket b.
func (m *Memory) HoldWithTokens(_ context.Context, accountID string, amount int64, lease time.Duration, b Bucket) (Hold, SpendResult, BucketResult, error) {
	if err := checkHold(amount, lease); err != nil {
		return Hold{}, SpendResult{}, BucketResult{}, err
	}
	if err := checkOwnBucket("hold with tokens", accountID, &b); err != nil {
		return Hold{}, SpendResult{}, BucketResult{}, err
	}
	var (
		h  Hold
		sr SpendResult
	)
	br, err := m.debitWithTokens(accountID, &b, func(e *memoryAccount, next time.Time, allowed bool) bool {
		h, sr = m.holdLocked(e, Hold{AccountID: accountID, Amount: amount}, lease, next, allowed)
		return sr.OK
	})
	return h, sr, br, err
}

// checkHold checks the amount and lease of a hold.
func checkHold(amount int64, lease time.Duration) error {
	switch {
	case amount < 0:
		return errNegativeCost
	case lease <= 0:
		return errorf("hold lease must be positive, got %v: %w", lease, ErrInvalidAmount)
	}
	return nil
}

// Settle implements [Holder].
func (m *Memory) Settle(_ context.Context, h Hold, actual int64) (int64, error) {
	if actual < 0 || actual > h.Amount {
		return 0, errorf("settle %d of a hold of %d: %w", actual, h.Amount, ErrInvalidAmount)
	}
	e, err := m.account(h.AccountID)
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	held, ok := e.holds[h.ID] // past its lease but not yet released: still good
	if !ok || held.amount != h.Amount {
		return e.balance.Load(), errorf("hold %d of account %q ended: %w", h.ID, h.AccountID, ErrNotFound)
	}
	delete(e.holds, h.ID)
	return m.giveBackLocked(e, h.Amount-actual), nil
}

// releaseExpiredLocked gives back every hold of e whose lease ended by now.
func (m *Memory) releaseExpiredLocked(e *memoryAccount, now time.Time) {
	var released int64
	for id, h := range e.holds {
		if !now.Before(h.expires) {
			delete(e.holds, id)
			released += h.amount
		}
	}
	m.giveBackLocked(e, released)
}

var (
	_ Holder       = (*Memory)(nil)
	_ BucketHolder = (*Memory)(nil)
)
