package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/go402/go402/store"
	"github.com/jackc/pgx/v5"
)

// UsageOptions configures a [UsageOutbox]; the zero value means defaults.
type UsageOptions struct {
	// Consumer names the reader: each consumer (say, one per payment
	// provider) acknowledges the usage on its own. Default "stripe".
	Consumer string
	// Settle is how long after a debit its usage becomes pending, so that
	// a refund of the same operation (a failed request) is netted out
	// before it is reported. Default 1 minute.
	Settle time.Duration
	// Lease is how long a usage read by Pending is kept from other
	// readers of the same consumer: longer than a report takes. Default
	// 1 minute.
	Lease time.Duration
	// Keep is how long an acknowledgement is kept, within which a refund
	// of a reported operation comes back as a correction (see
	// [store.Usage.Revision]); later refunds are not read. Default 7 days.
	Keep time.Duration
}

// UsageOutbox reads the ledger's debits, net of their refunds, as a
// [store.UsageOutbox]: nothing is written on a request's path beyond the
// ledger row the debit makes anyway. A per-consumer floor keeps each read
// to the ledger rows past the oldest unacknowledged debit, and a lease on
// what Pending returns keeps two replicas of a reporter from sending the
// same usage at once. Debits refunded in full are acknowledged on the way;
// a refund of an operation already reported comes back as a correction
// (see [store.Usage.Revision]). Safe for concurrent use.
//
// Every debit that commits is read until it is acknowledged, and every
// refund of a reported operation comes back, however long its transaction
// stayed open after the row took its place in the ledger: the floor also
// stays below the transactions still running (their transaction IDs), so
// a late commit never lands under it. Settle only nets refunds; it is not
// what keeps usage from being lost. A transaction left open in the
// database holds the floor's transaction ID back, so reads scan the
// ledger rows written since it began until it ends.
type UsageOutbox struct {
	s        *Store
	consumer string
	settle   time.Duration
	lease    time.Duration
	keep     time.Duration
	token    string
}

// UsageOutbox returns the usage outbox of the store's ledger (migrations
// 0002 to 0004 must be applied; see [Migrate]), or an error for a
// configuration mistake.
func (s *Store) UsageOutbox(opts *UsageOptions) (*UsageOutbox, error) {
	var o UsageOptions
	if opts != nil {
		o = *opts
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Settle", o.Settle}, {"Lease", o.Lease}, {"Keep", o.Keep}} {
		if d.v < 0 {
			return nil, fmt.Errorf("pgstore: UsageOptions.%s must be >= 0, got %v", d.name, d.v)
		}
	}
	if o.Keep == 0 {
		o.Keep = 7 * 24 * time.Hour
	}
	if o.Consumer == "" {
		o.Consumer = "stripe"
	}
	if o.Lease == 0 {
		o.Lease = time.Minute
	}
	if o.Settle == 0 {
		o.Settle = time.Minute
	}
	return &UsageOutbox{
		s: s, consumer: o.Consumer, settle: o.Settle, lease: o.Lease, keep: o.Keep, token: randomID(),
	}, nil
}

// Pending implements [store.UsageOutbox]: settled debits not yet
// acknowledged by the consumer nor leased to another reader, oldest first,
// each leased to this outbox.
func (o *UsageOutbox) Pending(ctx context.Context, limit int) ([]store.Usage, error) {
	if limit <= 0 {
		return nil, nil
	}
	ctx, cancel := o.s.bounded(ctx)
	defer cancel()
	rows, err := o.s.pool.Query(ctx, o.s.sql.usagePending, o.consumer, limit, o.settle, o.lease, o.token, o.keep)
	if err != nil {
		return nil, fmt.Errorf("pgstore: pending usage: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Usage, error) {
		var u store.Usage
		var reported *time.Time
		err := r.Scan(&u.Seq, &u.ID, &u.AccountID, &u.Value, &u.Time, &u.Revision, &reported)
		if reported != nil {
			u.ReportedAt = *reported
		}
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: pending usage: %w", err)
	}
	return out, nil
}

// Ack implements [store.UsageOutbox].
func (o *UsageOutbox) Ack(ctx context.Context, usages []store.Usage) error {
	if len(usages) == 0 {
		return nil
	}
	ops := make([]string, len(usages))
	seqs := make([]int64, len(usages))
	values := make([]int64, len(usages))
	revisions := make([]int32, len(usages))
	for i, u := range usages {
		ops[i], seqs[i], values[i], revisions[i] = u.ID, u.Seq, u.Value, int32(u.Revision)
	}
	ctx, cancel := o.s.bounded(ctx)
	defer cancel()
	if _, err := o.s.pool.Exec(ctx, o.s.sql.usageAck, o.consumer, ops, seqs, values, revisions); err != nil {
		return fmt.Errorf("pgstore: ack usage: %w", err)
	}
	return nil
}

var _ store.UsageOutbox = (*UsageOutbox)(nil)
