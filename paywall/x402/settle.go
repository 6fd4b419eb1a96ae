package x402

import (
	"context"
	"strings"
)

// maxErrorMessage bounds the facilitator's errorMessage forwarded in a
// payment response header.
const maxErrorMessage = 512

// settle settles the payment and sets the payment response header. On
// failure it writes the refusal, in place of anything the handler prepared,
// and returns false. What became of the payment goes to w.rec.
func (w *settleWriter) settle() bool {
	p := w.h.p
	if w.pay.Replay {
		w.setReceipt(w.rec.header)
		return true
	}
	// The settlement is not abandoned when the client goes away: the
	// handler did the work.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.r.Context()), p.opts.SettleTimeout)
	sr, err := p.f.Settle(ctx, w.pd.payload, w.pd.req)
	cancel()
	if p.opts.OnSettle != nil {
		p.opts.OnSettle(w.r.Context(), *w.pay, sr, err)
	}
	if sr.Network == "" {
		sr.Network = w.pd.req.Network
	}
	switch {
	case err != nil:
		w.lost(err)
		return false
	case sr.Success:
		w.settled(sr)
		return true
	case w.rec.outcome == unknown && alreadySettled(sr.ErrorReason):
		// The settlement whose answer was lost went through.
		w.settled(SettleResponse{Success: true, Payer: sr.Payer, Transaction: sr.Transaction,
			Network: sr.Network, Extensions: sr.Extensions})
		return true
	}
	w.refused(sr)
	return false
}

// alreadySettled reports whether a facilitator's reason for refusing to
// settle says that the payment's authorization was already used:
// invalid_transaction_state, or a scheme's "…_nonce_already_used".
func alreadySettled(reason string) bool {
	return reason == "invalid_transaction_state" || strings.HasSuffix(reason, "_already_used")
}

// settled records a settlement and sends its receipt.
func (w *settleWriter) settled(sr SettleResponse) {
	if sr.Payer == "" {
		sr.Payer = w.pay.Payer
	}
	w.pay.Payer = sr.Payer
	v := encodeHeader(sr)
	w.setReceipt(v)
	if seen := w.h.p.seen; seen != nil {
		w.rec = seen.remember(record{outcome: settled, header: v, payer: sr.Payer, retry: w.h.p.retryKey(w.r, w.pd.id)})
	}
}

// refused answers a settlement the facilitator refused: nothing was
// charged; the receipt is the facilitator's answer.
func (w *settleWriter) refused(sr SettleResponse) {
	w.rec = record{}
	w.restoreHeader()
	if len(sr.ErrorMessage) > maxErrorMessage {
		sr.ErrorMessage = sr.ErrorMessage[:maxErrorMessage]
	}
	reason := reasonOf(sr.ErrorReason, "unexpected_settle_error")
	if sr.ErrorReason == "" {
		sr.ErrorReason = reason
	}
	w.h.challenge(w.ResponseWriter, w.r, refusal{code: CodeSettlementFailed, reason: reason,
		receipt: encodeHeader(sr), version: w.pd.version})
}

// lost answers a settlement that got no usable answer: it may or may not
// have gone through. With the memory on, the payment is remembered so that
// sending it again finds out.
func (w *settleWriter) lost(err error) {
	if seen := w.h.p.seen; seen != nil {
		w.rec = seen.remember(record{outcome: unknown})
	}
	w.restoreHeader()
	receipt := encodeHeader(SettleResponse{ErrorReason: "unexpected_settle_error", Network: w.pd.req.Network,
		ErrorMessage: "the settlement's outcome is unknown; send the same payment again"})
	w.h.settlementUnknown(w.ResponseWriter, w.r, err, receipt, w.pd.version)
}

// setReceipt sets the payment response header.
func (w *settleWriter) setReceipt(v string) {
	hdr := w.ResponseWriter.Header()
	hdr.Set(responseHeader(w.pd.version), v)
	hdr.Add("Access-Control-Expose-Headers", w.h.p.expose)
}

// restoreHeader puts the headers back as they were before the handler ran.
func (w *settleWriter) restoreHeader() {
	hdr := w.ResponseWriter.Header()
	clear(hdr)
	for k, v := range w.saved {
		hdr[k] = v
	}
}

func responseHeader(version int) string {
	if version == 1 {
		return headerPaymentResponseV1
	}
	return HeaderPaymentResponse
}
