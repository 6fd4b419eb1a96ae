package stripebilling

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go402/go402/store"
	"github.com/stripe/stripe-go/v82"
)

// Usage is one operation's credits to bill; see [store.Usage].
type Usage = store.Usage

// Outbox holds usage until it is reported; see [store.UsageOutbox].
// [Journal] is one; pgstore's usage outbox, reading its ledger, is another.
type Outbox = store.UsageOutbox

// Reporter sends the usage of an [Outbox] to Stripe as billing meter events,
// each with its operation ID as identifier, so that Stripe counts a usage
// once however often it is sent. A usage is acknowledged as soon as Stripe
// accepted it: only a crash between Stripe's answer and that write sends
// an identifier again, and Stripe drops the repeat. Safe for concurrent
// use, though one Reporter per outbox is enough.
type Reporter struct {
	client *stripe.Client
	outbox Outbox
	opts   ReporterOptions
}

// ReporterOptions configures a [Reporter]. EventName is required, and one of
// Customer and Admin; the zero value of every other field means its default.
type ReporterOptions struct {
	// EventName is the meter's event name.
	EventName string
	// Customer returns the Stripe customer of a go402 account.
	Customer func(ctx context.Context, accountID string) (string, error)
	// Admin, used when Customer is nil, reads the customer the [Webhook]
	// recorded on the account (else the account ID is the customer ID).
	Admin store.Admin
	// BatchSize is how many usages one pass reads. Default 100.
	BatchSize int
	// Attempts is how often a usage is tried in one Flush. Default 5.
	Attempts int
	// Backoff is the wait before the first retry, doubling each time up to
	// MaxBackoff. Defaults 500ms and 30s.
	Backoff, MaxBackoff time.Duration
	// Sleep waits d or until ctx is done. Default a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives usages Stripe refused. Default slog.Default().
	Logger *slog.Logger
	// CancelWindow is how long after a report a correction (a refund
	// after it; see [store.Usage.Revision]) cancels its meter event and
	// reports the net again, as identifier "<operation ID>~<revision>".
	// Older corrections are logged and acknowledged: Stripe cancels only
	// events of the last 24 hours. Default 23 hours.
	CancelWindow time.Duration
	// Clock returns the current time. Default time.Now.
	Clock func() time.Time
}

// NewReporter returns a Reporter of outbox through client, or an error for
// a configuration mistake.
func NewReporter(client *stripe.Client, outbox Outbox, opts ReporterOptions) (*Reporter, error) {
	if client == nil || outbox == nil {
		return nil, errorf("NewReporter: nil client or outbox")
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	opts.BatchSize = cmp.Or(opts.BatchSize, 100)
	opts.Attempts = cmp.Or(opts.Attempts, 5)
	opts.Backoff = cmp.Or(opts.Backoff, 500*time.Millisecond)
	opts.MaxBackoff = cmp.Or(opts.MaxBackoff, 30*time.Second)
	opts.CancelWindow = cmp.Or(opts.CancelWindow, 23*time.Hour)
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Customer == nil {
		admin := opts.Admin
		opts.Customer = func(ctx context.Context, id string) (string, error) {
			a, err := admin.Account(ctx, id)
			if err != nil {
				return "", err
			}
			return cmp.Or(a.Metadata[metaCustomer], id), nil
		}
	}
	return &Reporter{client: client, outbox: outbox, opts: opts}, nil
}

// check reports the configuration mistakes of o.
func (o *ReporterOptions) check() error {
	switch {
	case o.EventName == "":
		return errorf("NewReporter: EventName must be set")
	case o.Customer == nil && o.Admin == nil:
		return errorf("NewReporter: Customer or Admin must be set")
	case o.BatchSize < 0 || o.Attempts < 0 || o.Backoff < 0 || o.MaxBackoff < 0 || o.CancelWindow < 0:
		return errorf("NewReporter: negative BatchSize, Attempts, back-off or CancelWindow")
	case o.CancelWindow > 24*time.Hour:
		return errorf("NewReporter: CancelWindow beyond Stripe's 24 hours")
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Flush reports every pending usage — the reconciliation of what was
// recorded but not yet acknowledged — and returns how many it sent. It
// stops at the first usage that still fails after its attempts, or that
// Stripe refuses (logged; it stays pending), returning the error.
func (r *Reporter) Flush(ctx context.Context) (int, error) {
	sent := 0
	for {
		batch, err := r.outbox.Pending(ctx, r.opts.BatchSize)
		if err != nil || len(batch) == 0 {
			return sent, err
		}
		for _, u := range batch {
			if err := r.report(ctx, u); err != nil {
				return sent, err
			}
			// Stripe has it: record that even if ctx ends now.
			if err := r.outbox.Ack(context.WithoutCancel(ctx), []Usage{u}); err != nil {
				return sent, err
			}
			sent++
		}
	}
}

// Run flushes every interval until ctx is done, logging failures; the
// next pass retries them. It returns ctx's error.
func (r *Reporter) Run(ctx context.Context, every time.Duration) error {
	for {
		if _, err := r.Flush(ctx); err != nil && ctx.Err() == nil {
			r.opts.Logger.Error("stripebilling: usage not reported", "error", err)
		}
		if err := r.opts.Sleep(ctx, every); err != nil {
			return err
		}
	}
}

// report sends u: a meter event, or for a correction the cancellation of
// the event it replaces and an event of the net, if any.
func (r *Reporter) report(ctx context.Context, u Usage) error {
	customer, err := r.opts.Customer(ctx, u.AccountID)
	if err != nil {
		return fmt.Errorf("stripebilling: customer of %q: %w", u.AccountID, err)
	}
	if u.Revision > 0 {
		prev := identifier(u.ID, u.Revision-1)
		if r.opts.Clock().Sub(u.ReportedAt) > r.opts.CancelWindow {
			r.opts.Logger.Warn("stripebilling: refund after the cancel window; usage not corrected",
				"identifier", prev, "net", u.Value)
			return nil
		}
		if err := r.retry(ctx, prev, func() error { return r.cancel(ctx, prev) }); err != nil {
			return err
		}
		if u.Value <= 0 {
			return nil
		}
	}
	id := identifier(u.ID, u.Revision)
	return r.retry(ctx, id, func() error { return r.send(ctx, customer, id, u) })
}

// identifier is the meter event identifier of an operation's revision.
func identifier(op string, revision int) string {
	if revision == 0 {
		return op
	}
	return op + "~" + strconv.Itoa(revision)
}

// retry calls call, retrying transient failures with back-off.
func (r *Reporter) retry(ctx context.Context, id string, call func() error) error {
	wait := r.opts.Backoff
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil || duplicate(err) {
			return nil
		}
		if !transient(err) || attempt >= r.opts.Attempts {
			r.opts.Logger.Error("stripebilling: meter event refused", "identifier", id, "error", err)
			return fmt.Errorf("stripebilling: usage %s: %w", id, err)
		}
		if err := r.opts.Sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, r.opts.MaxBackoff)
	}
}

// send posts one meter event.
func (r *Reporter) send(ctx context.Context, customer, id string, u Usage) error {
	_, err := r.client.V1BillingMeterEvents.Create(ctx, &stripe.BillingMeterEventCreateParams{
		EventName:  stripe.String(r.opts.EventName),
		Identifier: stripe.String(id),
		Timestamp:  stripe.Int64(u.Time.Unix()),
		Payload:    map[string]string{"stripe_customer_id": customer, "value": strconv.FormatInt(u.Value, 10)},
	})
	return err
}

// cancel cancels the meter event of identifier id.
func (r *Reporter) cancel(ctx context.Context, id string) error {
	_, err := r.client.V1BillingMeterEventAdjustments.Create(ctx, &stripe.BillingMeterEventAdjustmentCreateParams{
		EventName: stripe.String(r.opts.EventName),
		Type:      stripe.String("cancel"),
		Cancel:    &stripe.BillingMeterEventAdjustmentCreateCancelParams{Identifier: stripe.String(id)},
	})
	return err
}

// transient reports whether err may pass on a retry: no answer, 409, 429
// or a 5xx.
func transient(err error) bool {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return true // no answer from Stripe
	}
	return se.HTTPStatusCode == 0 || se.HTTPStatusCode == http.StatusConflict ||
		se.HTTPStatusCode == http.StatusTooManyRequests || se.HTTPStatusCode >= 500
}

// duplicate reports whether Stripe refused an event because it already has
// one with its identifier: the usage is reported.
func duplicate(err error) bool {
	var se *stripe.Error
	return errors.As(err, &se) && se.Code == stripe.ErrorCodeResourceAlreadyExists
}
