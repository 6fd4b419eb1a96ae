package stripebilling

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go402/go402/store"
	"github.com/stripe/stripe-go/v82"
)

// applyInvoice applies an invoice.paid (paid) or invoice.payment_failed
// event of version v: for a subscription's invoice, the payment state
// behind a lapse and its grace; on a paid invoice, the credit packs it
// bought, once per invoice.
func (h *Webhook) applyInvoice(ctx context.Context, v version, paid bool, in *stripe.Invoice) error {
	if in.Customer == nil {
		return nil
	}
	failure := store.Lapse("")
	var url string
	if !paid {
		failure = failureOf(in)
		url = h.paymentURL(ctx, in.Customer.ID, true)
	}
	credits := h.packCredits(in)
	ctx = store.WithOperation(ctx, store.Operation{ID: "stripe:" + in.ID})
	return h.update(ctx, in.Customer.ID, func(a *store.Account) error {
		changed := false
		if subscriptionInvoice(in) && v.newer(a.Metadata[metaInvoice]) {
			a.Metadata[metaInvoice] = v.String()
			a.Metadata[metaFailure] = string(failure)
			a.Metadata[metaFailedAt] = strconv.FormatInt(firstAttempt(in, v), 10)
			derive(a, h.opts.Grace)
			if url != "" {
				a.PaymentURL = url
			}
			changed = true
		}
		if paid && credits > 0 && creditOnce(a, in, time.Unix(v.at, 0)) {
			a.Balance += credits
			changed = true
		}
		if !changed {
			return errUnchanged
		}
		return nil
	})
}

// subscriptionInvoice reports whether in bills a subscription, rather than
// a one-off purchase such as a credit pack.
func subscriptionInvoice(in *stripe.Invoice) bool {
	return in.Parent != nil && in.Parent.SubscriptionDetails != nil
}

// firstAttempt returns when in was first attempted (finalized), else the
// event's time: the same for every retry of one invoice.
func firstAttempt(in *stripe.Invoice, v version) int64 {
	if in.StatusTransitions != nil && in.StatusTransitions.FinalizedAt > 0 {
		return in.StatusTransitions.FinalizedAt
	}
	return v.at
}

// failureOf classifies the payment failure of in by its error's decline or
// error code.
func failureOf(in *stripe.Invoice) store.Lapse {
	e := in.LastFinalizationError
	if e == nil {
		return store.LapsePaymentFailed
	}
	for _, code := range []string{string(e.DeclineCode), string(e.Code)} {
		switch code {
		case "insufficient_funds":
			return store.LapseInsufficientFunds
		case "card_declined", "generic_decline", "do_not_honor", "lost_card", "stolen_card", "fraudulent":
			return store.LapseCardDeclined
		case "expired_card", "incorrect_number", "invalid_number", "incorrect_cvc", "invalid_cvc",
			"invalid_expiry_month", "invalid_expiry_year", "payment_method_unactivated", "payment_method_not_available":
			return store.LapsePaymentMethodInvalid
		case "invoice_no_payment_method_types", "payment_method_missing", "missing":
			return store.LapsePaymentMethodMissing
		}
	}
	return store.LapsePaymentFailed
}

// packCredits returns the credits the credit-pack lines of in add.
func (h *Webhook) packCredits(in *stripe.Invoice) int64 {
	if in.Lines == nil || len(h.opts.CreditPacks) == 0 {
		return 0
	}
	var total int64
	for _, l := range in.Lines.Data {
		if l == nil || l.Pricing == nil || l.Pricing.PriceDetails == nil {
			continue
		}
		d := l.Pricing.PriceDetails
		n, ok := h.opts.CreditPacks[d.Price]
		if !ok {
			n, ok = h.opts.CreditPacks[d.Product]
		}
		if ok {
			total += n * max(l.Quantity, 1)
		}
	}
	return total
}

// creditOnce records in as credited on a and reports whether it was not
// yet: the first delivery of an invoice.paid adds its credits, any other
// none. It forgets invoices paid more than paidRetention before now, and
// refuses those (Stripe stops delivering an event after three days).
func creditOnce(a *store.Account, in *stripe.Invoice, now time.Time) bool {
	paidAt := now
	if in.StatusTransitions != nil && in.StatusTransitions.PaidAt > 0 {
		paidAt = time.Unix(in.StatusTransitions.PaidAt, 0)
	}
	horizon := now.Add(-paidRetention)
	key := metaPaidPrefix + in.ID
	if _, done := a.Metadata[key]; done || paidAt.Before(horizon) {
		return false
	}
	var paid []string
	for k, v := range a.Metadata {
		if !strings.HasPrefix(k, metaPaidPrefix) {
			continue
		}
		if t, err := strconv.ParseInt(v, 10, 64); err != nil || time.Unix(t, 0).Before(horizon) {
			delete(a.Metadata, k)
			continue
		}
		paid = append(paid, k)
	}
	if len(paid) >= maxPaidRemembered { // forget the oldest
		slices.SortFunc(paid, func(x, y string) int { return strings.Compare(a.Metadata[x], a.Metadata[y]) })
		for _, k := range paid[:len(paid)-maxPaidRemembered+1] {
			delete(a.Metadata, k)
		}
	}
	a.Metadata[key] = strconv.FormatInt(paidAt.Unix(), 10)
	return true
}
