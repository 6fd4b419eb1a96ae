package stripebilling

import (
	"context"

	"github.com/stripe/stripe-go/v82"
)

// paymentURL returns where the customer fixes their billing, if lapsed: a
// new billing-portal session when Options.Portal is set (PortalURL if that
// fails), else Options.PortalURL.
func (h *Webhook) paymentURL(ctx context.Context, customer string, lapsed bool) string {
	p := h.opts.Portal
	if !lapsed || p == nil {
		return pickString(lapsed, h.opts.PortalURL)
	}
	s, err := p.Client.V1BillingPortalSessions.Create(ctx, &stripe.BillingPortalSessionCreateParams{
		Customer: stripe.String(customer), ReturnURL: stripe.String(p.ReturnURL),
	})
	if err != nil || s.URL == "" {
		h.opts.Logger.Warn("stripebilling: billing portal session not created", "customer", customer, "error", err)
		return h.opts.PortalURL
	}
	return s.URL
}

func pickString(ok bool, s string) string {
	if ok {
		return s
	}
	return ""
}
