package admin

import (
	"time"

	"github.com/go402/go402/paywall"
)

// recentRefusals is how many refusals a Recorder keeps for the console.
const recentRefusals = 200

// Refusal is a request a go402 middleware refused, as the console shows
// it: never the key, at most its display prefix.
type Refusal struct {
	Time      time.Time    `json:"time"`
	Step      string       `json:"step"`
	Code      paywall.Code `json:"code"`
	Status    int          `json:"status"`
	AccountID string       `json:"account_id,omitempty"`
	KeyPrefix string       `json:"key_prefix,omitempty"`
	Route     string       `json:"route,omitempty"`
}

// noteRefusal keeps d in the ring of recent refusals; rec.mu is held.
func (rec *Recorder) noteRefusal(d paywall.Decision) {
	r := Refusal{Time: d.Time, Step: d.Step, Code: d.Code, Status: d.Status,
		AccountID: d.AccountID, KeyPrefix: d.KeyPrefix, Route: d.Route}
	if len(rec.refusals) < recentRefusals {
		rec.refusals = append(rec.refusals, r)
		return
	}
	rec.refusals[rec.next] = r
	rec.next = (rec.next + 1) % recentRefusals
}

// Refusals returns the most recent refusals (at most 200), newest first,
// of the account accountID, or of all accounts and anonymous callers if
// accountID is empty.
func (rec *Recorder) Refusals(accountID string) []Refusal {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n := len(rec.refusals)
	var out []Refusal
	for i := range n {
		r := rec.refusals[(rec.next-1-i+2*n)%n]
		if accountID == "" || r.AccountID == accountID {
			out = append(out, r)
		}
	}
	return out
}
