package store

import (
	"context"
	"slices"
	"strings"
	"time"
)

// defaultListLimit is how many accounts [Memory.Accounts] lists by default,
// and maxListLimit the most it lists at once.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// UpdateAccount implements [Admin]: fn gets a deep copy of the account, with
// any refill due now applied, under the account's lock, so no spend is lost.
// fn must not change the ID; the result must pass [Account.Validate].
func (m *Memory) UpdateAccount(_ context.Context, id string, fn func(*Account) error) (Account, error) {
	e, err := m.account(id)
	if err != nil {
		return Account{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	m.applyRefillLocked(e)
	a := e.accountLocked().clone()
	if err := fn(&a); err != nil {
		return Account{}, err
	}
	if a.ID != id {
		return Account{}, errorf("UpdateAccount: the account ID must not change")
	}
	if err := a.Validate(); err != nil {
		return Account{}, err
	}
	e.setLocked(a.clone())
	return a, nil
}

// Accounts implements [Admin]: deep copies, in order of ID.
func (m *Memory) Accounts(_ context.Context, after string, limit int) ([]Account, error) {
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	var all []*memoryAccount
	m.accounts.each(func(id string, e **memoryAccount) {
		if id > after {
			all = append(all, *e)
		}
	})
	slices.SortFunc(all, func(a, b *memoryAccount) int {
		return strings.Compare(a.put.Load().ID, b.put.Load().ID)
	})
	out := make([]Account, 0, min(limit, len(all)))
	for _, e := range all[:min(limit, len(all))] {
		out = append(out, m.current(e).clone())
	}
	return out, nil
}

// Keys implements [Admin]: the account's keys in order of CreatedAt, then
// Prefix.
func (m *Memory) Keys(_ context.Context, accountID string) ([]Key, error) {
	if _, err := m.account(accountID); err != nil {
		return nil, err
	}
	var keys []Key
	m.keys.each(func(_ Digest, k *memoryKey) {
		if k.key.AccountID == accountID {
			keys = append(keys, k.key)
		}
	})
	slices.SortFunc(keys, func(a, b Key) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Prefix, b.Prefix)
	})
	return keys, nil
}

// TouchKeys implements [Admin].
func (m *Memory) TouchKeys(_ context.Context, uses map[Digest]time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for d, t := range uses {
		k := m.keys.get(d)
		if k == nil || !t.After(k.key.LastUsedAt) {
			continue
		}
		touched := *k
		touched.key.LastUsedAt = t
		m.keys.set(d, touched)
	}
	return nil
}

var _ Admin = (*Memory)(nil)
