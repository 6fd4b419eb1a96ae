package store

import "time"

// Preview returns what a Spend of cost by the account a, as looked up,
// would return at now, and changes nothing: a refill due at now is applied
// to a copy, then the cost is compared with the balance. OK reports that
// the balance covers the cost; Balance is what would be left (or the
// balance too small for it); NextRefill the next top-up. A negative cost is
// never covered. An account's spend cap refuses as a spend's would
// (Cap.Reached), and the thresholds a spend would cross are in Cap.Crossed,
// not marked. Holds already taken are out of the looked-up balance;
// holds whose lease ended are not yet back in it.
//
// A shadow paywall decides a charge with Preview instead of debiting it.
func Preview(a *Account, cost int64, now time.Time) SpendResult {
	bal, next := a.Balance, time.Time{}
	if a.Refill != nil {
		c := Account{Balance: a.Balance, Refill: a.Refill, RefilledAt: a.RefilledAt}
		c.applyRefill(now)
		bal, next = c.Balance, c.nextRefill(now)
	}
	if a.capped() && cost >= 0 {
		c := *a // spendCapped copies the cap and thresholds it changes
		c.Balance = bal
		r := c.spendCapped(now, cost)
		r.NextRefill = next
		return r
	}
	r := SpendResult{Balance: bal, NextRefill: next}
	if cost >= 0 && cost <= bal {
		r.OK, r.Balance = true, bal-cost
	}
	return r
}
