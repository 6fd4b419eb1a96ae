package x402

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
)

// pay serves a request that carries a payment header: decode, match,
// verify, run next behind a settleWriter, settle at its first byte.
func (h *routeHandler) pay(w http.ResponseWriter, r *http.Request, value string, version int) {
	p := h.p
	var (
		raw []byte
		err error
		p2  PaymentPayload
		p1  PaymentPayloadV1
		i   int
	)
	if version == 2 {
		raw, err = decodeHeader(value, p.opts.MaxHeaderBytes, &p2)
		if err == nil && (p2.Accepted.Scheme == "" || len(p2.Payload) == 0) {
			err = ErrMalformed
		}
	} else {
		raw, err = decodeHeader(value, p.opts.MaxHeaderBytes, &p1)
		if err == nil && (p1.Scheme == "" || len(p1.Payload) == 0) {
			err = ErrMalformed
		}
	}
	if err != nil {
		h.invalid(w, r, version)
		return
	}
	if (version == 2 && p2.X402Version != 2) || (version == 1 && p1.X402Version != 1) {
		h.challenge(w, r, CodePaymentRejected, "invalid_x402_version", "", version)
		return
	}
	if version == 2 {
		i = h.matchV2(&p2.Accepted)
	} else {
		i = h.matchV1(p1.Scheme, p1.Network)
	}
	if i < 0 {
		h.challenge(w, r, CodePaymentRejected, "invalid_payment_requirements", "", version)
		return
	}

	pm := &Payment{Version: version, Requirements: h.accepts[i]}
	sw := &settleWriter{ResponseWriter: w, h: h, r: r, pay: pm, idx: i, p2: p2, p1: p1}

	if p.seen != nil {
		sw.key = replayKeyOf(r.Method, h.p.resourceURL(r), raw)
		e, state := p.seen.begin(sw.key)
		switch state {
		case replayBusy:
			h.inProgress(w, r)
			return
		case replaySettled:
			pm.Replay, pm.Payer, sw.replay = true, e.payer, e.header
			h.serve(sw)
			return
		}
		sw.track = true
		defer p.seen.end(sw.key)
	}

	ctx, cancel := context.WithTimeout(r.Context(), p.opts.VerifyTimeout)
	var vr VerifyResponse
	if version == 2 {
		vr, err = p.f.Verify(ctx, p2, h.accepts[i])
	} else {
		vr, err = p.fv1.VerifyV1(ctx, p1, h.requirementsV1(i, h.p.resourceURL(r)))
	}
	cancel()
	switch {
	case err != nil && r.Context().Err() != nil:
		return // the client is gone; nobody reads an answer
	case err != nil:
		h.unavailable(w, r, err, "", version)
		return
	case !vr.IsValid:
		h.challenge(w, r, CodePaymentRejected, reasonOf(vr.InvalidReason, "invalid_payload"), "", version)
		return
	}
	pm.Payer = vr.Payer
	h.serve(sw)
}

// serve runs next behind sw and settles if next wrote nothing. If next
// panics nothing is settled.
func (h *routeHandler) serve(sw *settleWriter) {
	sw.saved = sw.ResponseWriter.Header().Clone()
	r := sw.r.WithContext(context.WithValue(sw.r.Context(), paymentKey{}, sw.pay))
	h.next.ServeHTTP(sw, r)
	if sw.state == pending {
		sw.decide(http.StatusOK)
	}
}

type writerState int

const (
	pending writerState = iota // next has not chosen its status yet
	passing                    // next's response goes through
	dropped                    // settlement failed; next's output is discarded
)

// settleWriter is the ResponseWriter of a paid handler. It buffers nothing:
// when the handler commits to a status (WriteHeader, or the first Write,
// ReadFrom, Flush or Hijack) it settles the payment if the status is below
// 400, and only then lets the headers and body through; if settlement fails
// it sends the refusal instead and drops everything the handler writes.
type settleWriter struct {
	http.ResponseWriter
	h      *routeHandler
	r      *http.Request
	pay    *Payment
	idx    int
	p2     PaymentPayload
	p1     PaymentPayloadV1
	key    replayKey
	track  bool   // key is in the replay cache, in flight
	replay string // the first answer's payment response header, for a replay
	saved  http.Header
	state  writerState
}

// decide commits to status code: settles (below 400) or not, then writes
// the status or the refusal.
func (w *settleWriter) decide(code int) {
	if code < 400 && !w.settle() {
		w.state = dropped
		return
	}
	w.state = passing
	w.ResponseWriter.WriteHeader(code)
}

// settle settles the payment and sets the payment response header. On
// failure it writes the refusal, in place of anything the handler prepared,
// and returns false.
func (w *settleWriter) settle() bool {
	h, p := w.h, w.h.p
	name := responseHeader(w.pay.Version)
	hdr := w.ResponseWriter.Header()
	if w.replay != "" {
		hdr.Set(name, w.replay)
		hdr.Add("Access-Control-Expose-Headers", p.expose)
		return true
	}
	// The settlement is not abandoned when the client goes away: the
	// handler did the work.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.r.Context()), p.opts.SettleTimeout)
	var (
		sr  SettleResponse
		err error
	)
	if w.pay.Version == 2 {
		sr, err = p.f.Settle(ctx, w.p2, h.accepts[w.idx])
	} else {
		sr, err = p.fv1.SettleV1(ctx, w.p1, h.requirementsV1(w.idx, p.resourceURL(w.r)))
	}
	cancel()
	if p.opts.OnSettle != nil {
		p.opts.OnSettle(w.r.Context(), *w.pay, sr, err)
	}
	if err == nil && sr.Success {
		if sr.Payer != "" {
			w.pay.Payer = sr.Payer
		}
		v, _ := EncodeHeader(sr)
		hdr.Set(name, v)
		hdr.Add("Access-Control-Expose-Headers", p.expose)
		if w.track {
			p.seen.settled(w.key, v, w.pay.Payer)
		}
		return true
	}

	// Put the headers back as they were before the handler ran.
	clear(hdr)
	for k, v := range w.saved {
		hdr[k] = v
	}
	network := h.accepts[w.idx].Network
	if w.pay.Version == 1 {
		network = h.networksV1[w.idx]
	}
	if err != nil {
		v, _ := EncodeHeader(SettleResponse{ErrorReason: "unexpected_settle_error", Network: network})
		h.unavailable(w.ResponseWriter, w.r, err, v, w.pay.Version)
		return false
	}
	reason := reasonOf(sr.ErrorReason, "unexpected_settle_error")
	v, _ := EncodeHeader(SettleResponse{ErrorReason: reason, Payer: reasonOf(sr.Payer, ""), Network: network})
	h.challenge(w.ResponseWriter, w.r, CodeSettlementFailed, reason, v, w.pay.Version)
	return false
}

// WriteHeader settles for a status below 400 before passing it on.
// Informational statuses other than 101 pass straight through.
func (w *settleWriter) WriteHeader(code int) {
	switch {
	case w.state == passing:
		w.ResponseWriter.WriteHeader(code) // superfluous; net/http logs it
	case w.state == dropped:
	case code >= 100 && code < 200 && code != http.StatusSwitchingProtocols:
		w.ResponseWriter.WriteHeader(code)
	default:
		w.decide(code)
	}
}

// Write writes b, first committing to 200 if no status was chosen. After a
// failed settlement it writes nothing and returns [ErrSettlementFailed].
func (w *settleWriter) Write(b []byte) (int, error) {
	if w.state == pending {
		w.decide(http.StatusOK)
	}
	if w.state == dropped {
		return 0, ErrSettlementFailed
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom is like Write, using the wrapped writer's ReadFrom if it has one.
func (w *settleWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.state == pending {
		w.decide(http.StatusOK)
	}
	if w.state == dropped {
		return 0, ErrSettlementFailed
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
}

// FlushError commits to 200 if no status was chosen, then flushes. It is
// what [http.ResponseController.Flush] calls.
func (w *settleWriter) FlushError() error {
	if w.state == pending {
		w.decide(http.StatusOK)
	}
	if w.state == dropped {
		return ErrSettlementFailed
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush is FlushError for [http.Flusher].
func (w *settleWriter) Flush() { _ = w.FlushError() }

// Hijack settles (as for a status below 400) before handing over the
// connection; if settlement fails, the refusal is sent and Hijack returns
// [ErrSettlementFailed]. Over a connection that cannot be hijacked (HTTP/2)
// it returns [http.ErrNotSupported] without settling.
func (w *settleWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !canHijack(w.ResponseWriter) {
		return nil, nil, http.ErrNotSupported // before settling: no charge without service
	}
	if w.state == pending {
		if !w.settle() {
			w.state = dropped
		} else {
			w.state = passing
		}
	}
	if w.state == dropped {
		return nil, nil, ErrSettlementFailed
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap returns the wrapped ResponseWriter, for [http.ResponseController].
// Flush and Hijack are not unwrapped: they settle first. Writing to the
// unwrapped writer directly bypasses settlement.
func (w *settleWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// canHijack reports whether w, or a writer it wraps, is an http.Hijacker.
func canHijack(w http.ResponseWriter) bool {
	for {
		switch t := w.(type) {
		case http.Hijacker:
			return true
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return false
		}
	}
}
