package stripebilling

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go402/go402/store"
	"github.com/stripe/stripe-go/v82"
)

// Metadata keys the webhook keeps on an account, beside the application's.
const (
	metaCustomer      = "stripe_customer"     // the Stripe customer ID
	metaSubscription  = "stripe_subscription" // version of the subscription state applied
	metaSubStatus     = "stripe_sub_status"   // the subscription's Stripe status
	metaInvoice       = "stripe_invoice"      // version of the payment state applied
	metaFailure       = "stripe_failure"      // the lapse of the last failed payment; empty once paid
	metaFailedAt      = "stripe_failed_at"    // when the failing invoice was first attempted (Unix seconds)
	metaPaidPrefix    = "stripe_paid:"        // + invoice ID: credit packs of that invoice were added
	paidRetention     = 35 * 24 * time.Hour   // how long paid invoices are remembered
	maxPaidRemembered = 256                   // and at most how many
)

// version orders the states of one object: an event's creation time, then
// its ID, so that every replica and every delivery order agree.
type version struct {
	at int64
	id string
}

func (v version) String() string { return strconv.FormatInt(v.at, 10) + "/" + v.id }

// newer reports whether v is newer than the version stored as s (or s is
// empty).
func (v version) newer(s string) bool {
	at, id, ok := strings.Cut(s, "/")
	if !ok {
		return true
	}
	t, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return true
	}
	return v.at > t || (v.at == t && v.id > id)
}

// unmarshal decodes the event's object into dst.
func unmarshal(ev stripe.Event, dst any) error {
	if err := json.Unmarshal(ev.Data.Raw, dst); err != nil {
		return fmt.Errorf("decode %s: %w", ev.Type, err)
	}
	return nil
}

// derive sets a's Status, Lapse and GraceUntil from the subscription and
// payment states kept in its metadata, so that they depend only on the
// newest of each, never on the order the events came in.
func derive(a *store.Account, grace time.Duration) {
	m := a.Metadata
	if m[metaSubStatus] == "" {
		return // no subscription event yet: the status is the operator's
	}
	a.Status, a.Lapse = statusOf(stripe.SubscriptionStatus(m[metaSubStatus]))
	failure := store.Lapse(m[metaFailure])
	a.GraceUntil = time.Time{}
	switch a.Status {
	case store.StatusPastDue:
		a.Lapse = failure
		if failure == "" {
			a.Lapse = store.LapsePaymentFailed
		}
		if grace > 0 {
			a.GraceUntil = failedAt(m).Add(grace)
		}
	case store.StatusSuspended:
		if a.Lapse == "" {
			a.Lapse = failure
		}
	}
	if a.Lapse == "" && a.Status != store.StatusActive && a.Status != store.StatusTrialing {
		a.Lapse = store.LapsePaymentFailed
	}
}

// failedAt returns when the failing invoice was first attempted, or else
// when the subscription became past due.
func failedAt(m map[string]string) time.Time {
	if s, err := strconv.ParseInt(m[metaFailedAt], 10, 64); err == nil && m[metaFailure] != "" {
		return time.Unix(s, 0).UTC()
	}
	at, _, _ := strings.Cut(m[metaSubscription], "/")
	s, _ := strconv.ParseInt(at, 10, 64)
	return time.Unix(s, 0).UTC()
}

// statusOf maps a Stripe subscription status to a go402 status, with the
// lapse the status alone implies.
func statusOf(s stripe.SubscriptionStatus) (store.Status, store.Lapse) {
	switch s {
	case stripe.SubscriptionStatusActive:
		return store.StatusActive, ""
	case stripe.SubscriptionStatusTrialing:
		return store.StatusTrialing, ""
	case stripe.SubscriptionStatusPastDue:
		return store.StatusPastDue, ""
	case stripe.SubscriptionStatusCanceled:
		return store.StatusCanceled, store.LapseCanceled
	case stripe.SubscriptionStatusIncompleteExpired:
		return store.StatusCanceled, store.LapseExpired
	case stripe.SubscriptionStatusPaused: // a trial ended without a payment method
		return store.StatusSuspended, store.LapsePaymentMethodMissing
	case stripe.SubscriptionStatusUnpaid, stripe.SubscriptionStatusIncomplete:
		return store.StatusSuspended, ""
	}
	return store.StatusSuspended, ""
}
