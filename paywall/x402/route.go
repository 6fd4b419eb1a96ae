package x402

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
)

// Mode says who may use a priced route.
type Mode int

const (
	// Either lets key holders through the route's key chain (and credits)
	// and lets anyone without a key pay per request. The zero Mode.
	Either Mode = iota
	// PaymentOnly requires an x402 payment from every request; API keys are
	// ignored.
	PaymentOnly
	// KeysOnly turns x402 off: every request goes through the key chain and
	// no challenge is advertised. It lets a configuration switch a route's
	// payments off without rewiring it.
	KeysOnly
)

// modeName returns "either", "payment-only" or "keys-only", for errors.
func modeName(m Mode) string {
	switch m {
	case Either:
		return "either"
	case PaymentOnly:
		return "payment-only"
	case KeysOnly:
		return "keys-only"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Route is the price of a route and who may use it; see [Payments.Route].
type Route struct {
	// Accepts lists the ways to pay for one request, in order of
	// preference. At least one is required unless Mode is [KeysOnly]. Each
	// needs Scheme, a CAIP-2 Network, a decimal Amount in atomic units,
	// Asset, PayTo and a positive MaxTimeoutSeconds.
	Accepts []PaymentRequirements

	// Description and MimeType describe the resource in the challenge.
	// Both are optional.
	Description string
	MimeType    string

	// Price is the price in human terms, for example "$0.001" or
	// "0.001 USDC", shown in the detail of every 402 and so on the HTML
	// page browsers get. Default: the first Accepts entry spelled out
	// ("1000 atomic units of USDC on eip155:8453").
	Price string

	// Extensions are the challenge's protocol extensions (optional).
	Extensions map[string]any

	// Mode says who may use the route. Default [Either].
	Mode Mode

	// Keys is the key chain that key holders go through, for example
	// Authenticate followed by Charge of a [paywall.Paywall]. Required
	// unless Mode is [PaymentOnly].
	Keys func(http.Handler) http.Handler
}

// Validate reports the first problem that makes rt unusable, or nil.
// [Payments.Route] panics on such a problem; Validate lets a program that
// reads prices from a file report it instead.
func (rt *Route) Validate() error {
	switch rt.Mode {
	case Either, PaymentOnly, KeysOnly:
	default:
		return fmt.Errorf("x402: unknown %s", modeName(rt.Mode))
	}
	if rt.Mode != PaymentOnly && rt.Keys == nil {
		return fmt.Errorf("x402: Route.Keys is nil; mode %s needs a key chain", modeName(rt.Mode))
	}
	if rt.Mode == KeysOnly {
		return nil
	}
	if len(rt.Accepts) == 0 {
		return errors.New("x402: Route.Accepts is empty")
	}
	for i := range rt.Accepts {
		if err := rt.Accepts[i].validate(i); err != nil {
			return err
		}
	}
	return nil
}

func (a *PaymentRequirements) validate(i int) error {
	field := fmt.Sprintf("x402: Route.Accepts[%d].", i)
	switch {
	case a.Scheme == "":
		return errors.New(field + "Scheme is empty")
	case !strings.Contains(a.Network, ":"):
		return fmt.Errorf("%sNetwork %q is not a CAIP-2 id such as eip155:8453", field, a.Network)
	case !isDecimal(a.Amount):
		return fmt.Errorf("%sAmount %q is not a decimal number of atomic units", field, a.Amount)
	case a.Asset == "":
		return errors.New(field + "Asset is empty")
	case a.PayTo == "":
		return errors.New(field + "PayTo is empty")
	case a.MaxTimeoutSeconds <= 0:
		return fmt.Errorf("%sMaxTimeoutSeconds must be > 0, got %d", field, a.MaxTimeoutSeconds)
	}
	if _, err := json.Marshal(a.Extra); err != nil {
		return fmt.Errorf("%sExtra cannot be encoded as JSON: %w", field, err)
	}
	return nil
}

func isDecimal(s string) bool {
	if s == "" || len(s) > 78 { // 78 digits hold any uint256
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Route returns the middleware for a route priced by rt. In mode [Either] a
// request with an API key (see [Options.HasKey]) goes through rt.Keys and
// then next, as if x402 were not there, except that any 402 on the way also
// carries PAYMENT-REQUIRED; a request without a key but with a payment
// header is verified, served by next, and settled before next's response
// reaches the client; a request with neither gets a 402 challenge. Mode
// [PaymentOnly] treats every request as one without a key; mode [KeysOnly]
// returns rt.Keys(next).
//
// Route panics if rt is invalid (see [Route.Validate]), like
// [net/http.ServeMux.Handle] panics on a bad pattern: that is a programming
// error, found at start-up.
func (p *Payments) Route(rt Route) func(http.Handler) http.Handler {
	if err := rt.Validate(); err != nil {
		panic(err)
	}
	return func(next http.Handler) http.Handler {
		if rt.Mode == KeysOnly {
			return rt.Keys(next)
		}
		h := &routeHandler{p: p, next: next}
		h.init(rt)
		if rt.Mode == Either {
			h.keyed = rt.Keys(next)
		}
		return h
	}
}

// routeHandler serves one priced route.
type routeHandler struct {
	p     *Payments
	next  http.Handler
	keyed http.Handler // nil in PaymentOnly

	accepts     []PaymentRequirements // deep enough copy of Route.Accepts
	extras      []string              // accepts[i].Extra as canonical JSON, for matching
	description string
	mimeType    string
	extensions  map[string]any // Route.Extensions, and payment-identifier if retries are on
	price       string
	networksV1  []string // accepts[i].Network in version 1 naming
}

func (h *routeHandler) init(rt Route) {
	n := len(rt.Accepts)
	h.accepts, h.extras, h.networksV1 = make([]PaymentRequirements, n), make([]string, n), make([]string, n)
	for i, a := range rt.Accepts {
		a.Extra = maps.Clone(a.Extra)
		h.accepts[i] = a
		h.extras[i] = canonicalJSON(a.Extra)
		h.networksV1[i] = networkV1(a.Network)
	}
	h.description, h.mimeType = rt.Description, rt.MimeType
	h.extensions = rt.Extensions
	if h.p.opts.RetryIdentity != nil && rt.Extensions[paymentIdentifier] == nil {
		h.extensions = maps.Clone(rt.Extensions)
		if h.extensions == nil {
			h.extensions = make(map[string]any, 1)
		}
		h.extensions[paymentIdentifier] = paymentIdentifierOffer
	}
	h.price = rt.Price
	if h.price == "" {
		a := h.accepts[0]
		asset := a.Asset
		if name, ok := a.Extra["name"].(string); ok && name != "" {
			asset = name
		}
		h.price = a.Amount + " atomic units of " + asset + " on " + a.Network
	}
}

func (h *routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.keyed != nil && h.p.opts.HasKey(r) {
		h.keyed.ServeHTTP(&challengeWriter{ResponseWriter: w, h: h, r: r}, r)
		return
	}
	if v := r.Header.Get(HeaderPaymentSignature); v != "" {
		h.pay(w, r, v, 2)
		return
	}
	if h.p.opts.V1 {
		if v := r.Header.Get(headerPaymentV1); v != "" {
			h.pay(w, r, v, 1)
			return
		}
	}
	h.challenge(w, r, refusal{code: CodePaymentRequired})
}

// match returns the index of the route's requirement that the client's
// accepted requirement c equals, or -1. Every field counts, as in the
// reference server: scheme, network, amount, asset, payTo,
// maxTimeoutSeconds and extra (as JSON values; absent and empty are the
// same). The one difference allowed is letter case in EVM addresses, which
// is only a checksum. The client's copy is only used to choose: the
// facilitator is always given the server's.
func (h *routeHandler) match(c *PaymentRequirements) int {
	for i := range h.accepts {
		a := &h.accepts[i]
		if a.Scheme == c.Scheme && a.Network == c.Network && a.Amount == c.Amount &&
			a.MaxTimeoutSeconds == c.MaxTimeoutSeconds &&
			sameAddress(a.Network, a.Asset, c.Asset) && sameAddress(a.Network, a.PayTo, c.PayTo) &&
			h.extras[i] == canonicalJSON(c.Extra) {
			return i
		}
	}
	return -1
}

// matchV1 returns the index of the requirement a version 1 payment for
// scheme on network pays, or -1. Version 1 payments name nothing else.
func (h *routeHandler) matchV1(scheme, network string) int {
	for i := range h.accepts {
		if h.accepts[i].Scheme == scheme && h.networksV1[i] == network {
			return i
		}
	}
	return -1
}

// canonicalJSON returns m as JSON with sorted keys ("" for an empty map),
// so that two maps that decode from equal JSON compare equal.
func canonicalJSON(m map[string]any) string {
	if len(m) == 0 {
		return ""
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "\x00" // never equal to valid JSON; Route.Validate refuses such an Extra
	}
	return string(b)
}

// sameAddress compares addresses, ignoring case on EVM networks, where it
// is only a checksum.
func sameAddress(network, a, b string) bool {
	if strings.HasPrefix(network, "eip155:") {
		return strings.EqualFold(a, b)
	}
	return a == b
}
