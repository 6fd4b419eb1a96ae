package x402

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/go402/go402/paywall"
)

// Denial codes of the x402 middleware, in the [paywall.Denial.Code] of its
// refusals (the "code" member of the problem body). Like paywall's codes they
// keep their meaning across releases.
const (
	// CodePaymentRequired (402): the route is priced and the request
	// neither paid nor (in mode Either) carried a key.
	CodePaymentRequired paywall.Code = "payment_required"
	// CodeInvalidPayment (402, with a fresh challenge): the payment header
	// is not base64 JSON of the expected shape, or is too long.
	CodeInvalidPayment paywall.Code = "invalid_payment"
	// CodePaymentRejected (402): the payment names a version or requirement
	// the route does not offer, was already used, or the facilitator found
	// it invalid.
	CodePaymentRejected paywall.Code = "payment_rejected"
	// CodeSettlementFailed (402): the facilitator refused to settle after
	// the handler ran; nothing was charged, and the handler's response was
	// dropped.
	CodeSettlementFailed paywall.Code = "settlement_failed"
	// CodeSettlementUnknown (503 if the facilitator timed out, else 502):
	// the facilitator gave no usable answer to the settlement, so the
	// payment may have been charged; the handler's response was dropped.
	// Sending the same request with the same payment again (not a new one)
	// finds out: a payment that went through is served without being
	// charged again, one that did not is settled then. See
	// [Options.ReplayWindow].
	CodeSettlementUnknown paywall.Code = "settlement_unknown"
	// CodePaymentInProgress (409): the same payment is being verified or
	// settled by another request; retry after Retry-After.
	CodePaymentInProgress paywall.Code = "payment_in_progress"
	// CodeFacilitatorUnavailable (503): the facilitator did not answer the
	// verification in time. Nothing was charged.
	CodeFacilitatorUnavailable paywall.Code = "facilitator_unavailable"
	// CodeFacilitatorError (502): the facilitator could not be reached or
	// gave no usable answer to the verification. Nothing was charged.
	CodeFacilitatorError paywall.Code = "facilitator_error"
)

// Problem types (RFC 9457) of the "Payment" HTTP authentication scheme
// draft, reused for x402 refusals.
const (
	typePaymentRequired     = "https://paymentauth.org/problems/payment-required"
	typePaymentInsufficient = "https://paymentauth.org/problems/payment-insufficient"
	typeVerificationFailed  = "https://paymentauth.org/problems/verification-failed"
	typeMalformedCredential = "https://paymentauth.org/problems/malformed-credential"
	typeInvalidChallenge    = "https://paymentauth.org/problems/invalid-challenge"
)

// ErrSettlementFailed is returned by Write, Flush, ReadFrom and Hijack of the
// ResponseWriter a paid handler gets, once the payment could not be settled
// and the refusal has been sent in place of the handler's response. A
// handler that sees it should stop producing output.
var ErrSettlementFailed = errors.New("x402: payment not settled; response dropped")

// refusal is why a 402 refuses a payment.
type refusal struct {
	code    paywall.Code
	reason  string // the challenge's error, an x402 reason such as "insufficient_funds"
	receipt string // if not empty, the payment response header to send
	version int    // the x402 version of the payment
	used    bool   // the payment was already used here
}

// challenge writes a 402 that carries PAYMENT-REQUIRED (with the refusal's
// reason as its error) and the challenge members in the body.
func (h *routeHandler) challenge(w http.ResponseWriter, r *http.Request, f refusal) {
	d := &paywall.Denial{Code: f.code, Status: http.StatusPaymentRequired, Title: "Payment Required"}
	d.Type, d.Detail = h.explain(f)
	d.Header = h.challengeHeader(r, f.reason)
	if f.receipt != "" {
		d.Header.Set(responseHeader(f.version), f.receipt)
	}
	url := h.p.resourceURL(r)
	if h.p.opts.V1 {
		msg := f.reason
		if msg == "" {
			msg = "X-PAYMENT header is required"
		}
		d.Extensions = map[string]any{"x402Version": 1, "error": msg, "accepts": h.acceptsV1(url)}
	} else {
		d.Extensions = map[string]any{"x402Version": 2, "resource": h.resource(url), "accepts": h.accepts}
		if f.reason != "" {
			d.Extensions["error"] = f.reason
		}
		if h.extensions != nil {
			d.Extensions["extensions"] = h.extensions
		}
	}
	h.p.opts.Deny(w, r, d)
}

// explain returns the problem type and detail of a 402.
func (h *routeHandler) explain(f refusal) (typ, detail string) {
	cost := "This request costs " + h.price + "."
	how := " To pay, send the request again with a PAYMENT-SIGNATURE header built from the PAYMENT-REQUIRED header of this response (an x402 client or wallet does this)"
	if h.keyed != nil {
		how += ", or with an API key"
	}
	how += "."
	switch {
	case f.code == CodePaymentRequired:
		return typePaymentRequired, cost + how
	case f.code == CodeInvalidPayment:
		return typeMalformedCredential, "The " + signatureHeader(f.version) + " header must be base64-encoded JSON of an x402 payment payload, at most " +
			strconv.Itoa(maxHeaderBytes) + " bytes long. " + cost + how
	case f.code == CodeSettlementFailed:
		return typeVerificationFailed, "The payment could not be settled (" + f.reason + "); nothing was charged. " + cost + how
	case f.used:
		return typeVerificationFailed, "This payment was already used: one payment buys one response. " + cost + how
	}
	switch f.reason {
	case "insufficient_funds":
		typ = typePaymentInsufficient
	case "invalid_x402_version", "invalid_payment_requirements":
		typ = typeInvalidChallenge
	default:
		typ = typeVerificationFailed
	}
	return typ, "The payment was not accepted (" + f.reason + "). " + cost + how
}

func signatureHeader(version int) string {
	if version == 1 {
		return headerPaymentV1
	}
	return HeaderPaymentSignature
}

func (h *routeHandler) resource(url string) Resource {
	return Resource{URL: url, Description: h.description, MimeType: h.mimeType}
}

// paymentRequired returns the route's version 2 challenge for r.
func (h *routeHandler) paymentRequired(r *http.Request, reason string) PaymentRequired {
	return PaymentRequired{
		X402Version: 2,
		Error:       reason,
		Resource:    h.resource(h.p.resourceURL(r)),
		Accepts:     h.accepts,
		Extensions:  h.extensions,
	}
}

// challengeHeader returns the headers every challenge carries:
// PAYMENT-REQUIRED and Access-Control-Expose-Headers.
func (h *routeHandler) challengeHeader(r *http.Request, reason string) http.Header {
	hdr := make(http.Header, 2)
	h.addChallenge(hdr, r, reason)
	return hdr
}

func (h *routeHandler) addChallenge(hdr http.Header, r *http.Request, reason string) {
	hdr.Set(HeaderPaymentRequired, encodeHeader(h.paymentRequired(r, reason)))
	hdr.Add("Access-Control-Expose-Headers", h.p.expose)
}

// inProgress writes the 409 for a duplicate of a payment in flight.
func (h *routeHandler) inProgress(w http.ResponseWriter, r *http.Request) {
	h.p.opts.Deny(w, r, &paywall.Denial{
		Code:       CodePaymentInProgress,
		Status:     http.StatusConflict,
		Type:       "about:blank",
		Title:      "Conflict",
		Detail:     "This payment is being processed by another request; send it again in a moment.",
		RetryAfter: retryInProgress,
	})
}

// unavailable writes the 503 or 502 for a facilitator that failed with err
// while verifying: nothing was charged.
func (h *routeHandler) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	d := &paywall.Denial{
		Code:       CodeFacilitatorError,
		Status:     http.StatusBadGateway,
		Type:       "about:blank",
		Title:      "Bad Gateway",
		Detail:     "The payment service gave no usable answer; nothing was charged. Try again later with the same payment.",
		RetryAfter: h.p.opts.RetryAfter,
	}
	if isTimeout(err) {
		d.Code, d.Status, d.Title = CodeFacilitatorUnavailable, http.StatusServiceUnavailable, "Service Unavailable"
		d.Detail = "The payment service did not answer in time; nothing was charged. Try again later with the same payment."
	}
	h.p.opts.Deny(w, r, d)
}

// settlementUnknown writes the 503 or 502 for a settlement that got no
// usable answer (err), with receipt as the payment response header.
func (h *routeHandler) settlementUnknown(w http.ResponseWriter, r *http.Request, err error, receipt string, version int) {
	d := &paywall.Denial{
		Code:       CodeSettlementUnknown,
		Status:     http.StatusBadGateway,
		Type:       "about:blank",
		Title:      "Bad Gateway",
		RetryAfter: h.p.opts.RetryAfter,
		Header:     http.Header{},
	}
	if isTimeout(err) {
		d.Status, d.Title = http.StatusServiceUnavailable, "Service Unavailable"
	}
	d.Detail = "The payment service did not confirm the settlement, so the payment may have been charged. "
	if h.p.seen != nil {
		d.Detail += "Send the same request again with the same " + signatureHeader(version) +
			" header, not a new payment: if the payment went through you get the response without paying again; if not, it is settled then."
	} else {
		d.Detail += "Check the payment with the payment service before paying again."
	}
	d.Header.Set(responseHeader(version), receipt)
	d.Header.Add("Access-Control-Expose-Headers", h.p.expose)
	h.p.opts.Deny(w, r, d)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// reasonOf returns a facilitator's reason if it is a plain token such as
// "insufficient_funds" (so that it is safe to show), else def.
func reasonOf(s, def string) string {
	if s == "" || len(s) > 64 {
		return def
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return def
		}
	}
	return s
}

// challengeWriter wraps the ResponseWriter of the key chain of a route in
// mode Either, adding PAYMENT-REQUIRED to a 402 (insufficient credits,
// say). It changes nothing else and buffers nothing.
type challengeWriter struct {
	http.ResponseWriter
	h *routeHandler
	r *http.Request
}

func (w *challengeWriter) WriteHeader(code int) {
	if code == http.StatusPaymentRequired {
		hdr := w.ResponseWriter.Header()
		if hdr.Get(HeaderPaymentRequired) == "" {
			w.h.addChallenge(hdr, w.r, "")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap returns the wrapped ResponseWriter, for [http.ResponseController].
func (w *challengeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush flushes the wrapped ResponseWriter if it can.
func (w *challengeWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Hijack hijacks the wrapped ResponseWriter's connection if it can.
func (w *challengeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// ReadFrom lets io.Copy use the wrapped ResponseWriter's ReadFrom.
func (w *challengeWriter) ReadFrom(src io.Reader) (int64, error) {
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
}
