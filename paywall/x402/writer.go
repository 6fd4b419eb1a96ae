package x402

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

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
	h     *routeHandler
	r     *http.Request
	pay   *Payment
	pd    paid
	rec   record // what became of the payment, for the memory
	saved http.Header
	state writerState
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
