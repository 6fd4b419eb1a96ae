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
	// CodeInvalidPayment (400): the payment header is not base64 JSON of
	// the expected shape, or is too long.
	CodeInvalidPayment paywall.Code = "invalid_payment"
	// CodePaymentRejected (402): the payment names a version or requirement
	// the route does not offer, or the facilitator found it invalid.
	CodePaymentRejected paywall.Code = "payment_rejected"
	// CodeSettlementFailed (402): the facilitator refused to settle after
	// the handler ran; the handler's response was dropped.
	CodeSettlementFailed paywall.Code = "settlement_failed"
	// CodePaymentInProgress (409): the same payment is being verified or
	// settled by another request; retry after Retry-After.
	CodePaymentInProgress paywall.Code = "payment_in_progress"
	// CodeFacilitatorUnavailable (503): the facilitator did not answer in
	// time. Nothing was charged.
	CodeFacilitatorUnavailable paywall.Code = "facilitator_unavailable"
	// CodeFacilitatorError (502): the facilitator could not be reached or
	// gave no usable answer. Nothing was charged.
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

// challenge writes a 402 with code, which carries PAYMENT-REQUIRED (with
// reason as its error) and the challenge members in the body. resp, if not
// empty, is sent as the payment response header of a version version
// payment.
func (h *routeHandler) challenge(w http.ResponseWriter, r *http.Request, code paywall.Code, reason, resp string, version int) {
	d := &paywall.Denial{Code: code, Status: http.StatusPaymentRequired, Title: "Payment Required"}
	cost := "This request costs " + h.price + "."
	how := " To pay, send the request again with a PAYMENT-SIGNATURE header built from the PAYMENT-REQUIRED header of this response (an x402 client or wallet does this)"
	if h.keyed != nil {
		how += ", or with an API key"
	}
	how += "."
	switch code {
	case CodePaymentRequired:
		d.Type, d.Detail = typePaymentRequired, cost+how
	case CodeSettlementFailed:
		d.Type = typeVerificationFailed
		d.Detail = "The payment could not be settled (" + reason + "); nothing was charged. " + cost + how
	default: // CodePaymentRejected
		switch reason {
		case "insufficient_funds":
			d.Type = typePaymentInsufficient
		case "invalid_x402_version", "invalid_payment_requirements":
			d.Type = typeInvalidChallenge
		default:
			d.Type = typeVerificationFailed
		}
		d.Detail = "The payment was not accepted (" + reason + "). " + cost + how
	}
	d.Header = h.challengeHeader(r, reason)
	if resp != "" {
		d.Header.Set(responseHeader(version), resp)
	}
	url := h.p.resourceURL(r)
	if h.p.fv1 != nil {
		accepts := make([]PaymentRequirementsV1, len(h.accepts))
		for i := range h.accepts {
			accepts[i] = h.requirementsV1(i, url)
		}
		msg := reason
		if msg == "" {
			msg = "X-PAYMENT header is required"
		}
		d.Extensions = map[string]any{"x402Version": 1, "error": msg, "accepts": accepts}
	} else {
		d.Extensions = map[string]any{"x402Version": 2, "resource": h.resource(url), "accepts": h.accepts}
		if reason != "" {
			d.Extensions["error"] = reason
		}
		if h.extensions != nil {
			d.Extensions["extensions"] = h.extensions
		}
	}
	h.p.opts.Deny(w, r, d)
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
	if v, err := EncodeHeader(h.paymentRequired(r, reason)); err == nil {
		hdr.Set(HeaderPaymentRequired, v)
	}
	hdr.Add("Access-Control-Expose-Headers", h.p.expose)
}

func responseHeader(version int) string {
	if version == 1 {
		return HeaderPaymentResponseV1
	}
	return HeaderPaymentResponse
}

// invalid writes the 400 for a malformed payment header.
func (h *routeHandler) invalid(w http.ResponseWriter, r *http.Request, version int) {
	name := HeaderPaymentSignature
	if version == 1 {
		name = HeaderPaymentV1
	}
	h.p.opts.Deny(w, r, &paywall.Denial{
		Code:   CodeInvalidPayment,
		Status: http.StatusBadRequest,
		Type:   typeMalformedCredential,
		Title:  "Malformed Payment",
		Detail: "The " + name + " header must be base64-encoded JSON of an x402 payment payload, at most " +
			strconv.Itoa(h.p.opts.MaxHeaderBytes) + " bytes long.",
	})
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

// unavailable writes the 503 or 502 for a facilitator that failed with err;
// resp, if not empty, is sent as the payment response header.
func (h *routeHandler) unavailable(w http.ResponseWriter, r *http.Request, err error, resp string, version int) {
	d := &paywall.Denial{
		Code:       CodeFacilitatorError,
		Status:     http.StatusBadGateway,
		Type:       "about:blank",
		Title:      "Bad Gateway",
		Detail:     "The payment service gave no usable answer; nothing was charged. Try again later.",
		RetryAfter: h.p.opts.RetryAfter,
	}
	if isTimeout(err) {
		d.Code, d.Status, d.Title = CodeFacilitatorUnavailable, http.StatusServiceUnavailable, "Service Unavailable"
		d.Detail = "The payment service did not answer in time; nothing was charged. Try again later."
	}
	if resp != "" {
		d.Header = http.Header{}
		d.Header.Set(responseHeader(version), resp)
		d.Header.Add("Access-Control-Expose-Headers", h.p.expose)
	}
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
