package stripebilling

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go402/go402/store"
)

// Journal is go402's local usage queue for a store without a ledger of its
// own: a [store.Memory] whose every debit and refund is appended, with its
// [store.Operation], to a file and synced to stable storage before the
// request goes on. It is a [store.Ledger] (so the paywall gives each charge
// an operation) and the [Outbox] of a [Reporter]: usage survives a crash or
// a Stripe outage and is reported once acknowledged. A debit whose record
// cannot be written is refunded and fails, so no request is served
// unrecorded. Methods not listed here are Memory's. Safe for concurrent use.
//
// The file holds one JSON line per entry ({"entry":…}) or acknowledgement
// ({"ack":"<operation ID>"}, with the value and revision reported and
// when); opening it again resumes where it stopped.
type Journal struct {
	*store.Memory
	mu      sync.Mutex
	f       *os.File
	seq     int64
	settle  time.Duration
	clock   func() time.Time
	pending map[string]*Usage // unacknowledged operations by ID
	order   []string          // their IDs, oldest first (acknowledged ones pruned lazily)
	keep    time.Duration
	acked   map[string]Usage // acknowledged operations, as reported, kept for keep
	ackOrd  []string         // their IDs, oldest acknowledgement first (pruned lazily)
}

// JournalOptions configures a [Journal]; the zero value means defaults.
type JournalOptions struct {
	// Settle is how long after a debit its usage becomes pending, so that
	// a refund of the same operation (a failed request) is netted out
	// first. Default 1 minute.
	Settle time.Duration
	// Clock returns the current time. Default time.Now.
	Clock func() time.Time
	// Keep is how long an acknowledged operation is remembered, within
	// which a refund of it makes a correction (see [store.Usage.Revision]).
	// Default 25 hours.
	Keep time.Duration
}

// journalLine is one line of the file. An acknowledgement records the
// value and revision reported, and when.
type journalLine struct {
	Entry *store.LedgerEntry `json:"entry,omitempty"`
	Ack   string             `json:"ack,omitempty"`
	Value int64              `json:"value,omitempty"`
	Rev   int                `json:"rev,omitempty"`
	At    time.Time          `json:"at,omitzero"`
}

// OpenJournal opens (creating it, mode 0600) the journal file at path over
// m, and loads the usage not yet acknowledged.
func OpenJournal(path string, m *store.Memory, opts *JournalOptions) (*Journal, error) {
	if m == nil {
		return nil, errorf("OpenJournal: nil store")
	}
	j := &Journal{Memory: m, settle: time.Minute, clock: time.Now, pending: map[string]*Usage{},
		keep: 25 * time.Hour, acked: map[string]Usage{}}
	if opts != nil && opts.Settle > 0 {
		j.settle = opts.Settle
	}
	if opts != nil && opts.Keep > 0 {
		j.keep = opts.Keep
	}
	if opts != nil && opts.Clock != nil {
		j.clock = opts.Clock
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, errorf("open journal: %w", err)
	}
	if err := j.load(f); err != nil {
		f.Close()
		return nil, err
	}
	j.f = f
	return j, nil
}

// load replays the file. A torn last line (a crash while writing) is
// ignored: its debit was refunded or never answered.
func (j *Journal) load(f *os.File) error {
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l journalLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			continue
		}
		switch {
		case l.Entry != nil:
			j.seq = max(j.seq, l.Entry.Seq)
			j.track(*l.Entry)
		case l.Ack != "":
			j.acknowledge(l)
		}
	}
	if err := sc.Err(); err != nil {
		return errorf("read journal: %w", err)
	}
	return nil
}

// track adds entry e to the pending usage of its operation.
func (j *Journal) track(e store.LedgerEntry) {
	switch e.Kind {
	case "debit":
		if _, ok := j.pending[e.OperationID]; !ok {
			j.order = append(j.order, e.OperationID)
			j.pending[e.OperationID] = &Usage{ID: e.OperationID, AccountID: e.AccountID, Time: e.Time}
		}
		j.pending[e.OperationID].Value -= e.Amount
	case "refund":
		if u, ok := j.pending[e.OperationID]; ok {
			u.Value -= e.Amount
		} else if a, ok := j.acked[e.OperationID]; ok {
			// A refund after the report: a correction of it.
			a.Value -= e.Amount
			a.Revision++
			j.order = append(j.order, e.OperationID)
			j.pending[e.OperationID] = &a
		}
	}
}

// acknowledge applies acknowledgement l: its operation is no longer
// pending, and is remembered as reported.
func (j *Journal) acknowledge(l journalLine) {
	u, ok := j.pending[l.Ack]
	if !ok {
		return
	}
	delete(j.pending, l.Ack)
	if l.At.IsZero() {
		return
	}
	net := u.Value
	u.Value, u.Revision, u.ReportedAt = l.Value, l.Rev, l.At
	if _, seen := j.acked[l.Ack]; !seen {
		j.ackOrd = append(j.ackOrd, l.Ack)
	}
	j.acked[l.Ack] = *u
	if net != l.Value {
		// Refunded while it was being reported: correct the report.
		c := *u
		c.Value, c.Revision = net, l.Rev+1
		j.order = append(j.order, l.Ack)
		j.pending[l.Ack] = &c
	}
}

// forget drops the acknowledged operations older than keep.
func (j *Journal) forget(now time.Time) {
	n := 0
	for _, id := range j.ackOrd {
		a, ok := j.acked[id]
		if ok && now.Sub(a.ReportedAt) <= j.keep {
			break
		}
		delete(j.acked, id)
		n++
	}
	j.ackOrd = j.ackOrd[n:]
}

// Spend debits through the Memory and records the debit.
func (j *Journal) Spend(ctx context.Context, accountID string, cost int64) (store.SpendResult, error) {
	r, err := j.Memory.Spend(ctx, accountID, cost)
	if err != nil || !r.OK || cost == 0 {
		return r, err
	}
	if err := j.record(ctx, accountID, "debit", -cost, r.Balance); err != nil {
		return store.SpendResult{}, j.undo(ctx, accountID, cost, err)
	}
	return r, nil
}

// SpendWithTokens debits and takes tokens through the Memory and records
// the debit.
func (j *Journal) SpendWithTokens(ctx context.Context, accountID string, cost int64, b store.Bucket) (store.SpendResult, store.BucketResult, error) {
	r, br, err := j.Memory.SpendWithTokens(ctx, accountID, cost, b)
	if err != nil || !r.OK || cost == 0 {
		return r, br, err
	}
	if err := j.record(ctx, accountID, "debit", -cost, r.Balance); err != nil {
		return store.SpendResult{}, store.BucketResult{}, j.undo(ctx, accountID, cost, err)
	}
	return r, br, nil
}

// Refund credits through the Memory and records the refund.
func (j *Journal) Refund(ctx context.Context, accountID string, amount int64) (int64, error) {
	bal, err := j.Memory.Refund(ctx, accountID, amount)
	if err != nil {
		return bal, err
	}
	if err := j.record(ctx, accountID, "refund", amount, bal); err != nil {
		return bal, errorf("refund of %q not journaled (the credits are back): %w", accountID, err)
	}
	return bal, nil
}

// undo refunds a debit whose record failed, and returns the error.
func (j *Journal) undo(ctx context.Context, accountID string, cost int64, err error) error {
	if _, rerr := j.Memory.Refund(ctx, accountID, cost); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return errorf("debit of %q not journaled: %w", accountID, err)
}

// record appends and syncs one entry.
func (j *Journal) record(ctx context.Context, accountID, kind string, amount, balance int64) error {
	op, _ := store.OperationFrom(ctx)
	if op.ID == "" {
		op.ID = "journal:" + rand.Text()
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	e := store.LedgerEntry{Seq: j.seq + 1, Time: j.clock(), AccountID: accountID, Kind: kind, Amount: amount,
		Balance: balance, OperationID: op.ID, Route: op.Route, KeyPrefix: op.KeyPrefix}
	if err := j.appendLocked(journalLine{Entry: &e}); err != nil {
		return err
	}
	j.seq++
	j.track(e)
	return nil
}

// appendLocked writes one line and syncs the file.
func (j *Journal) appendLocked(l journalLine) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return err
	}
	return j.f.Sync()
}

// Entries implements [store.Ledger] by reading the file: for audits and
// reconciliation, not for a request's path.
func (j *Journal) Entries(_ context.Context, accountID string, q store.LedgerQuery) ([]store.LedgerEntry, error) {
	limit := q.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	f, err := os.Open(j.f.Name())
	if err != nil {
		return nil, errorf("read journal: %w", err)
	}
	defer f.Close()
	var out []store.LedgerEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() && len(out) < limit {
		var l journalLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Entry == nil {
			continue
		}
		e := *l.Entry
		if e.AccountID == accountID && e.Seq > q.After && !e.Time.Before(q.From) && (q.To.IsZero() || e.Time.Before(q.To)) {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}

// Pending implements [Outbox]: settled operations not yet acknowledged,
// oldest first, with their net value (debit less refunds); operations
// refunded in full before their report are acknowledged on the way, and a
// refund after the report makes a correction.
func (j *Journal) Pending(_ context.Context, limit int) ([]Usage, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.clock()
	j.forget(now)
	cutoff := now.Add(-j.settle)
	var out []Usage
	kept := j.order[:0]
	seen := make(map[string]bool, len(j.pending)) // a corrected operation is in order twice
	for _, id := range j.order {
		u, ok := j.pending[id]
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		kept = append(kept, id)
		if len(out) < limit && !u.Time.After(cutoff) {
			if u.Value <= 0 && u.Revision == 0 {
				if err := j.appendLocked(journalLine{Ack: id}); err != nil {
					return out, errorf("journal: %w", err)
				}
				delete(j.pending, id)
				kept = kept[:len(kept)-1]
				continue
			}
			out = append(out, *u)
		}
	}
	j.order = kept
	return out, nil
}

// Ack implements [Outbox].
func (j *Journal) Ack(_ context.Context, usages []Usage) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, u := range usages {
		p, ok := j.pending[u.ID]
		if !ok || p.Revision != u.Revision {
			continue
		}
		l := journalLine{Ack: u.ID, Value: u.Value, Rev: u.Revision, At: j.clock()}
		if err := j.appendLocked(l); err != nil {
			return errorf("journal: %w", err)
		}
		j.acknowledge(l)
	}
	return nil
}

// Close closes the file. Spends after Close fail (and are refunded).
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("stripebilling: close journal: %w", err)
	}
	return nil
}

var (
	_ store.Ledger = (*Journal)(nil)
	_ Outbox       = (*Journal)(nil)
)
