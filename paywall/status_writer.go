package paywall

import (
	"io"
	"net/http"
)

// statusWriter records the status of a response as it is written, passing
// headers and body straight through: nothing is buffered. It is used only
// when a charge may be refunded.
//
// It implements http.Flusher (and FlushError, which
// http.ResponseController prefers) and io.ReaderFrom itself; everything else
// (Hijack, SetReadDeadline, SetWriteDeadline, EnableFullDuplex) is reached
// through Unwrap by http.ResponseController.
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
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher. Flushing commits the headers, with 200 if
// no status was written.
func (w *statusWriter) Flush() { _ = w.FlushError() }

// FlushError flushes and reports whether the underlying writer could.
func (w *statusWriter) FlushError() error {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// ReadFrom implements io.ReaderFrom, so that io.Copy onto the response keeps
// the underlying writer's fast path (sendfile).
func (w *statusWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, src)
}

// writerOnly hides every method of a writer but Write, so io.Copy does not
// loop back into ReadFrom.
type writerOnly struct{ io.Writer }
