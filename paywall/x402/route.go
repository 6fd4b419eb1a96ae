package x402

import (
	"errors"
	"fmt"
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

// String returns "either", "payment-only" or "keys-only".
func (m Mode) String() string {
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
		return fmt.Errorf("x402: unknown %v", rt.Mode)
	}
	if rt.Mode != PaymentOnly && rt.Keys == nil {
		return fmt.Errorf("x402: Route.Keys is nil; mode %v needs a key chain", rt.Mode)
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
	description string
	mimeType    string
	extensions  map[string]any
	price       string
	networksV1  []string // accepts[i].Network in version 1 naming
}

func (h *routeHandler) init(rt Route) {
	h.accepts = make([]PaymentRequirements, len(rt.Accepts))
	h.networksV1 = make([]string, len(rt.Accepts))
	for i, a := range rt.Accepts {
		if a.Extra != nil {
			extra := make(map[string]any, len(a.Extra))
			for k, v := range a.Extra {
				extra[k] = v
			}
			a.Extra = extra
		}
		h.accepts[i] = a
		h.networksV1[i] = networkV1(a.Network)
	}
	h.description, h.mimeType, h.extensions = rt.Description, rt.MimeType, rt.Extensions
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
	if h.p.fv1 != nil {
		if v := r.Header.Get(HeaderPaymentV1); v != "" {
			h.pay(w, r, v, 1)
			return
		}
	}
	h.challenge(w, r, CodePaymentRequired, "", "", 2)
}

// networkV1 maps well-known CAIP-2 ids to the network names of x402 version
// 1; other ids are used as they are.
func networkV1(caip2 string) string {
	switch caip2 {
	case "eip155:8453":
		return "base"
	case "eip155:84532":
		return "base-sepolia"
	case "eip155:43114":
		return "avalanche"
	case "eip155:43113":
		return "avalanche-fuji"
	case "eip155:137":
		return "polygon"
	case "eip155:80002":
		return "polygon-amoy"
	case "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp":
		return "solana"
	case "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1":
		return "solana-devnet"
	}
	return caip2
}

// requirementsV1 returns accepts[i] in version 1 form for the resource at url.
func (h *routeHandler) requirementsV1(i int, url string) PaymentRequirementsV1 {
	a := h.accepts[i]
	return PaymentRequirementsV1{
		Scheme:            a.Scheme,
		Network:           h.networksV1[i],
		MaxAmountRequired: a.Amount,
		Asset:             a.Asset,
		PayTo:             a.PayTo,
		Resource:          url,
		Description:       h.description,
		MimeType:          h.mimeType,
		MaxTimeoutSeconds: a.MaxTimeoutSeconds,
		Extra:             a.Extra,
	}
}

// matchV2 returns the index of the route's requirement the client chose, or
// -1. The client's copy is only used to choose: the facilitator is always
// given the server's.
func (h *routeHandler) matchV2(c *PaymentRequirements) int {
	for i := range h.accepts {
		a := &h.accepts[i]
		if a.Scheme == c.Scheme && a.Network == c.Network && a.Amount == c.Amount &&
			sameAddress(a.Network, a.Asset, c.Asset) && sameAddress(a.Network, a.PayTo, c.PayTo) {
			return i
		}
	}
	return -1
}

func (h *routeHandler) matchV1(scheme, network string) int {
	for i := range h.accepts {
		if h.accepts[i].Scheme == scheme && h.networksV1[i] == network {
			return i
		}
	}
	return -1
}

// sameAddress compares addresses, ignoring case on EVM networks, where it
// is only a checksum.
func sameAddress(network, a, b string) bool {
	if strings.HasPrefix(network, "eip155:") {
		return strings.EqualFold(a, b)
	}
	return a == b
}
