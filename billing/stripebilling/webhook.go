package stripebilling

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/go402/go402/store"
	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
)

// Webhook is the http.Handler of a Stripe webhook endpoint: it verifies each
// event's Stripe-Signature and applies subscription and invoice events to
// the go402 account of the event's customer through [store.Admin]. It is safe
// for concurrent use. See the package documentation for what each event
// changes.
type Webhook struct {
	admin store.Admin
	opts  Options
}

// Options configures a [Webhook]. Secret is required; the zero value of every
// other field means its documented default.
type Options struct {
	// Secret is the endpoint's signing secret (whsec_…).
	Secret string
	// Tolerance is how old a signature's timestamp may be. Default 5
	// minutes, as Stripe recommends.
	Tolerance time.Duration
	// Plans maps a Stripe price ID or product ID (the price wins) to the
	// go402 plan a subscription item grants.
	Plans map[string]Plan
	// CreditPacks maps a price or product ID to the credits one unit adds
	// to the balance when an invoice with it is paid.
	CreditPacks map[string]int64
	// Grace is how long a past-due account keeps access after its invoice
	// first failed. Default 0: none.
	Grace time.Duration
	// AccountID returns the go402 account of a Stripe customer. Default:
	// the customer ID. Events of customers without an account are
	// acknowledged and ignored.
	AccountID func(ctx context.Context, customerID string) (string, error)
	// PortalURL, if set, is the billing-portal link (for example the
	// portal's login link) a lapsed account gets as its PaymentURL.
	PortalURL string
	// Portal, if set, creates a billing-portal session for a lapsed
	// account, whose URL becomes its PaymentURL (preferred to PortalURL).
	Portal *PortalSessions
	// Logger, if set, receives refused and ignored events. Default
	// slog.Default().
	Logger *slog.Logger
}

// PortalSessions creates Stripe billing-portal sessions through Client.
type PortalSessions struct {
	Client    *stripe.Client
	ReturnURL string // where the portal sends the customer back; required
}

// Plan is what a subscription item's price or product grants.
type Plan struct {
	Name     string   // the go402 plan; required
	Features []string // the plan's features
	// Credits, if positive, is the quota of each billing period: the
	// balance is topped up to it at every period start (see store.Refill).
	Credits int64
}

// maxBody is the largest webhook body read: Stripe's events are far smaller.
const maxBody = 1 << 20

// New returns a Webhook applying events to admin, or an error prefixed
// "stripebilling:" for a configuration mistake.
func New(admin store.Admin, opts Options) (*Webhook, error) {
	if admin == nil {
		return nil, errorf("store must not be nil")
	}
	if err := validOptions(&opts); err != nil {
		return nil, err
	}
	if opts.Tolerance == 0 {
		opts.Tolerance = webhook.DefaultTolerance
	}
	if opts.AccountID == nil {
		opts.AccountID = func(_ context.Context, customer string) (string, error) { return customer, nil }
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Webhook{admin: admin, opts: opts}, nil
}

// validOptions reports the first configuration mistake in opts.
func validOptions(opts *Options) error {
	switch {
	case opts.Secret == "":
		return errorf("Secret must be set")
	case opts.Tolerance < 0 || opts.Grace < 0:
		return errorf("Tolerance and Grace must be >= 0, got %v and %v", opts.Tolerance, opts.Grace)
	case opts.Portal != nil && (opts.Portal.Client == nil || opts.Portal.ReturnURL == ""):
		return errorf("Portal needs a Client and a ReturnURL")
	}
	if u, err := url.Parse(opts.PortalURL); opts.PortalURL != "" && (err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http")) {
		return errorf("PortalURL %q is not an absolute http or https URL", opts.PortalURL)
	}
	return validPlans(opts.Plans, opts.CreditPacks)
}

// validPlans reports the first unusable plan or credit pack.
func validPlans(plans map[string]Plan, packs map[string]int64) error {
	for id, p := range plans {
		if id == "" || p.Name == "" || p.Credits < 0 {
			return errorf("plan %q: an ID, a Name and Credits >= 0 are required", id)
		}
	}
	for id, n := range packs {
		if id == "" || n <= 0 {
			return errorf("credit pack %q: an ID and credits > 0 are required", id)
		}
	}
	return nil
}

// ServeHTTP verifies and applies one event. It answers 400 to a body whose
// signature is missing, wrong or stale (nothing changes), 200 once the event
// is applied or ignored, and 500 when the store fails, so that Stripe
// delivers the event again.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	ev, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), h.opts.Secret,
		webhook.ConstructEventOptions{Tolerance: h.opts.Tolerance})
	if err != nil {
		h.opts.Logger.Warn("stripebilling: refused an event", "error", err)
		http.Error(w, "invalid signature or event", http.StatusBadRequest)
		return
	}
	if err := h.Apply(r.Context(), ev); err != nil {
		h.opts.Logger.Error("stripebilling: event not applied", "event", ev.ID, "type", ev.Type, "error", err)
		http.Error(w, "event not applied", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// Apply applies a verified event, as ServeHTTP does after checking its
// signature: applying an event again, or an older one after a newer, changes
// nothing. Events of other types, of unknown customers and of unmapped
// prices are ignored (nil). It returns an error only if the store failed.
func (h *Webhook) Apply(ctx context.Context, ev stripe.Event) error {
	if ev.Data == nil {
		return nil
	}
	v := version{at: ev.Created, id: ev.ID}
	switch ev.Type {
	case "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted":
		var s stripe.Subscription
		if err := unmarshal(ev, &s); err != nil {
			return h.ignore(ev, err)
		}
		return h.applySubscription(ctx, v, &s)
	case "invoice.paid", "invoice.payment_failed":
		var in stripe.Invoice
		if err := unmarshal(ev, &in); err != nil {
			return h.ignore(ev, err)
		}
		return h.applyInvoice(ctx, v, ev.Type == "invoice.paid", &in)
	}
	return nil
}

// ignore logs an event that cannot be applied and acknowledges it.
func (h *Webhook) ignore(ev stripe.Event, err error) error {
	h.opts.Logger.Warn("stripebilling: ignored an event", "event", ev.ID, "type", ev.Type, "error", err)
	return nil
}

// update applies fn to the account of customer. An unknown customer is
// ignored.
func (h *Webhook) update(ctx context.Context, customer string, fn func(*store.Account) error) error {
	if customer == "" {
		return nil
	}
	id, err := h.opts.AccountID(ctx, customer)
	if err != nil {
		return fmt.Errorf("stripebilling: account of customer %s: %w", customer, err)
	}
	_, err = h.admin.UpdateAccount(ctx, id, func(a *store.Account) error {
		if a.Metadata == nil {
			a.Metadata = map[string]string{}
		}
		a.Metadata[metaCustomer] = customer
		return fn(a)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.opts.Logger.Info("stripebilling: no account for customer", "customer", customer, "account", id)
		return nil
	case errors.Is(err, errUnchanged):
		return nil
	case err != nil:
		return fmt.Errorf("stripebilling: update account %q: %w", id, err)
	}
	return nil
}

// errUnchanged aborts an update that would change nothing.
var errUnchanged = errors.New("stripebilling: unchanged")

func errorf(format string, args ...any) error {
	return fmt.Errorf("stripebilling: "+format, args...)
}
