package x402

import (
	"context"
	"errors"
	"net/http"
)

// errVersion reports a payment of an x402 version its header does not
// carry.
var errVersion = errors.New("x402: unexpected x402Version")

// paid is a payment on its way through a route, in the form the
// facilitator gets it.
type paid struct {
	version int
	idx     int                 // the route's requirement it pays
	payload PaymentPayload      // as the facilitator gets it
	req     PaymentRequirements // the server's requirement, as the facilitator gets it
	raw     []byte              // the decoded header, which identifies the payment
	id      string              // payment-identifier id, "" if none
}

// pay serves a request that carries a payment header: decode, match,
// look the payment up, verify, run next behind a settleWriter, settle at
// its first byte.
func (h *routeHandler) pay(w http.ResponseWriter, r *http.Request, value string, version int) {
	pd, ref := h.decode(r, value, version)
	if ref.code != "" {
		h.challenge(w, r, ref)
		return
	}
	sw := &settleWriter{ResponseWriter: w, h: h, r: r, pd: pd,
		pay: &Payment{Version: version, Requirements: h.accepts[pd.idx]}}
	seen := h.p.seen
	if seen == nil {
		h.verifyAndServe(sw)
		return
	}
	key := paymentKeyOf(r.Method, h.p.resourceURL(r), pd.raw)
	rec, busy := seen.begin(key)
	if busy {
		h.inProgress(w, r)
		return
	}
	sw.rec = rec
	defer func() { seen.finish(key, sw.rec) }()
	switch {
	case rec.outcome == unknown:
		// Settling again tells what became of the lost settlement.
		h.serve(sw)
	case rec.outcome == settled && rec.retry != noRetry && rec.retry == h.p.retryKey(r, pd.id):
		sw.pay.Replay, sw.pay.Payer = true, rec.payer
		h.serve(sw)
	case rec.outcome == settled:
		h.challenge(w, r, refusal{code: CodePaymentRejected, reason: "invalid_transaction_state", version: version, used: true})
	default:
		h.verifyAndServe(sw)
	}
}

// decode decodes and matches a payment header, or returns the refusal.
func (h *routeHandler) decode(r *http.Request, value string, version int) (paid, refusal) {
	pd := paid{version: version}
	var err error
	if version == 2 {
		err = h.decodeV2(value, &pd)
	} else {
		err = h.decodeV1(r, value, &pd)
	}
	switch {
	case err == errMalformed:
		return pd, refusal{code: CodeInvalidPayment, reason: "invalid_payload", version: version}
	case err == errVersion:
		return pd, refusal{code: CodePaymentRejected, reason: "invalid_x402_version", version: version}
	case pd.idx < 0:
		return pd, refusal{code: CodePaymentRejected, reason: "invalid_payment_requirements", version: version}
	}
	return pd, refusal{}
}

func (h *routeHandler) decodeV2(value string, pd *paid) error {
	p := &pd.payload
	raw, err := decodeHeader(value, maxHeaderBytes, p)
	if err != nil || p.Accepted.Scheme == "" || len(p.Payload) == 0 {
		return errMalformed
	}
	if p.X402Version != 2 {
		return errVersion
	}
	pd.raw, pd.id = raw, paymentID(p.Extensions)
	pd.idx = h.match(&p.Accepted)
	if pd.idx >= 0 {
		pd.req = h.accepts[pd.idx]
	}
	return nil
}

func (h *routeHandler) decodeV1(r *http.Request, value string, pd *paid) error {
	var p payloadV1
	raw, err := decodeHeader(value, maxHeaderBytes, &p)
	if err != nil || p.Scheme == "" || len(p.Payload) == 0 {
		return errMalformed
	}
	if p.X402Version != 1 {
		return errVersion
	}
	pd.raw = raw
	pd.idx = h.matchV1(p.Scheme, p.Network)
	if pd.idx >= 0 {
		pd.req = h.requirementV1(pd.idx)
		res := h.resource(h.p.resourceURL(r))
		pd.payload = PaymentPayload{X402Version: 1, Accepted: pd.req, Payload: p.Payload, Resource: &res}
	}
	return nil
}

// verifyAndServe verifies the payment through the facilitator and, if it
// is valid, serves it.
func (h *routeHandler) verifyAndServe(sw *settleWriter) {
	r, pd := sw.r, &sw.pd
	ctx, cancel := context.WithTimeout(r.Context(), h.p.opts.VerifyTimeout)
	vr, err := h.p.f.Verify(ctx, pd.payload, pd.req)
	cancel()
	switch {
	case err != nil && r.Context().Err() != nil:
		return // the client is gone; nobody reads an answer
	case err != nil:
		h.unavailable(sw.ResponseWriter, r, err)
		return
	case !vr.IsValid:
		h.challenge(sw.ResponseWriter, r, refusal{code: CodePaymentRejected,
			reason: reasonOf(vr.InvalidReason, "invalid_payload"), version: pd.version})
		return
	}
	sw.pay.Payer = vr.Payer
	h.serve(sw)
}

// serve runs next behind sw and settles if next wrote nothing. If next
// panics nothing is settled.
func (h *routeHandler) serve(sw *settleWriter) {
	sw.saved = sw.ResponseWriter.Header().Clone()
	r := sw.r.WithContext(context.WithValue(sw.r.Context(), paymentCtxKey{}, sw.pay))
	h.next.ServeHTTP(sw, r)
	if sw.state == pending {
		sw.decide(http.StatusOK)
	}
}
