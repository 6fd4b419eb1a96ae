package stripebilling

import (
	"context"
	"slices"
	"time"

	"github.com/go402/go402/store"
	"github.com/stripe/stripe-go/v82"
)

// applySubscription applies a customer.subscription.* event of version v:
// status, plan, features, the refill's period anchor, and the end of access
// of a subscription set to cancel.
func (h *Webhook) applySubscription(ctx context.Context, v version, s *stripe.Subscription) error {
	if s.Customer == nil {
		return nil
	}
	plan, item := h.planOf(s)
	url := h.paymentURL(ctx, s.Customer.ID, lapses(s.Status))
	return h.update(ctx, s.Customer.ID, func(a *store.Account) error {
		if !v.newer(a.Metadata[metaSubscription]) {
			return errUnchanged
		}
		a.Metadata[metaSubscription] = v.String()
		a.Metadata[metaSubStatus] = string(s.Status)
		a.PeriodEnd = time.Time{}
		if s.CancelAt > 0 && s.Status != stripe.SubscriptionStatusCanceled {
			a.PeriodEnd = time.Unix(s.CancelAt, 0).UTC()
		}
		if plan != nil {
			setPlan(a, plan, item)
		}
		if s.Status == stripe.SubscriptionStatusCanceled || s.Status == stripe.SubscriptionStatusIncompleteExpired {
			a.Refill = nil // no more periodic quota once the subscription ended
		}
		derive(a, h.opts.Grace)
		if url != "" {
			a.PaymentURL = url
		}
		return nil
	})
}

// lapses reports whether a subscription in status s has no access.
func lapses(s stripe.SubscriptionStatus) bool {
	return s != stripe.SubscriptionStatusActive && s != stripe.SubscriptionStatusTrialing
}

// planOf returns the plan of the first item of s whose price or product is
// mapped, and that item, or nil.
func (h *Webhook) planOf(s *stripe.Subscription) (*Plan, *stripe.SubscriptionItem) {
	if s.Items == nil {
		return nil, nil
	}
	for _, it := range s.Items.Data {
		if it == nil || it.Price == nil {
			continue
		}
		if p, ok := h.opts.Plans[it.Price.ID]; ok {
			return &p, it
		}
		if it.Price.Product != nil {
			if p, ok := h.opts.Plans[it.Price.Product.ID]; ok {
				return &p, it
			}
		}
	}
	return nil, nil
}

// setPlan puts a on plan p for the billing period of item: plan and
// features at once; the quota refilled from the period's start, and on a
// change of plan the balance moved by the difference of the two quotas, so
// that what was used this period stays used and bought credits stay.
func setPlan(a *store.Account, p *Plan, item *stripe.SubscriptionItem) {
	var old int64
	if a.Refill != nil {
		old = a.Refill.Amount
	}
	changed := a.Plan != p.Name || old != p.Credits
	a.Plan, a.Features = p.Name, slices.Clone(p.Features)
	start, end := time.Unix(item.CurrentPeriodStart, 0).UTC(), time.Unix(item.CurrentPeriodEnd, 0).UTC()
	if p.Credits <= 0 || !end.After(start) {
		a.Refill = nil
		if changed {
			a.Balance = max(a.Balance-old, 0)
		}
		return
	}
	a.Refill = &store.Refill{Amount: p.Credits, Every: end.Sub(start), Anchor: start}
	if changed {
		a.Balance = max(a.Balance-old+p.Credits, 0)
		a.RefilledAt = start // this period's quota is in the balance now
	}
}
