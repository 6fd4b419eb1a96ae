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
	if amount < 0 {
		return Hold{}, SpendResult{}, errNegativeCost
	}
	if lease <= 0 {
		return Hold{}, SpendResult{}, errorf("hold lease must be positive, got %v: %w", lease, ErrInvalidAmount)
	}
	e, err := m.account(accountID)
	if err != nil {
		return Hold{}, SpendResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.debitLocked(m.applyRefillLocked(e), amount, true)
	if !r.OK {
		return Hold{}, r, nil
	}
	if e.holds == nil {
		e.holds = make(map[int64]memoryHold)
	}
	h := Hold{AccountID: accountID, ID: m.holdSeq.Add(1), Amount: amount, Expires: m.now().Add(lease)}
	e.holds[h.ID] = memoryHold{amount, h.Expires}
	return h, r, nil
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
	bal := e.balance.Load() + h.Amount - actual
	e.balance.Store(bal)
	return bal, nil
}

// releaseExpiredLocked gives back every hold of e whose lease ended by now.
func (e *memoryAccount) releaseExpiredLocked(now time.Time) {
	for id, h := range e.holds {
		if !now.Before(h.expires) {
			delete(e.holds, id)
			e.balance.Add(h.amount)
		}
	}
}

var _ Holder = (*Memory)(nil)
