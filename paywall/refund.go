package paywall

import (
	"cmp"
	"context"
	"io"
	"net/http"
)

// serve runs the handler of a charged request and, with refunds on, gives
// the cost back if RefundIf says so of its status.
func (c *charge) serve() {
	refundIf := c.h.opts.RefundIf
	if refundIf == nil {
		c.h.next.ServeHTTP(c.w, c.r)
		return
	}
	sw := &statusWriter{ResponseWriter: c.w}
	completed := false
	defer func() {
		// Once, whether next returned or panicked: a panic goes on up.
		status := sw.status
		switch {
		case !completed:
			status = http.StatusInternalServerError
		case status == 0:
			status = http.StatusOK
		}
		if refundIf(status) && c.refund() {
			c.s.idem.void = true
		}
	}()
	c.h.next.ServeHTTP(sw, c.r)
	completed = true
}

// refund gives the cost back, even if the client hung up, reports it, and
// reports whether it succeeded.
func (c *charge) refund() bool {
	p, caller := c.h.p, &c.s.caller
	bal, err := p.refunder.Refund(context.WithoutCancel(c.r.Context()), caller.Account.ID, c.cost)
	e := decision("refund", caller)
	e.Allowed, e.Cost, e.Balance, e.Err = err == nil, c.cost, bal, err
	if err != nil {
		e.Code, e.Balance = CodeStoreUnavailable, 0
	}
	p.report(c.r, e)
	return err == nil
}

// statusWriter records the status of a response, passing it through
// unbuffered. It implements http.Flusher (and FlushError, which
// http.ResponseController prefers) and io.ReaderFrom; the rest is reached
// through Unwrap.
type statusWriter struct {
	http.ResponseWriter
	status int // first final (≥ 200) status written; 0 if none yet
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.status = cmp.Or(w.status, http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher; it commits the headers, 200 by default.
func (w *statusWriter) Flush() { _ = w.FlushError() }

// FlushError flushes and reports whether the underlying writer could.
func (w *statusWriter) FlushError() error {
	w.status = cmp.Or(w.status, http.StatusOK)
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// ReadFrom implements io.ReaderFrom, keeping io.Copy's sendfile path.
func (w *statusWriter) ReadFrom(src io.Reader) (int64, error) {
	w.status = cmp.Or(w.status, http.StatusOK)
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, src)
}

// writerOnly hides every method of a writer but Write, so io.Copy does not
// loop back into ReadFrom.
type writerOnly struct{ io.Writer }
