// Package gin402 runs go402 middlewares in a gin engine.
//
// A go402 middleware is a func(http.Handler) http.Handler: it hands the
// next handler a request that carries the caller and, on a refundable
// charge, a ResponseWriter that records the status. gin handlers write to
// c.Writer and read c.Request, so wrapping a middleware naively leaves both
// behind, and a 5xx never reaches the refund. [Wrap] runs the rest of the
// gin chain inside the middleware, through the writer and with the request
// it passes on:
//
//	r := gin.New()
//	r.POST("/generate", gin402.Wrap(pw.Authenticate), gin402.Wrap(pw.Charge(10)), generate)
//
// Handlers read the caller with paywall.CallerFromContext(c.Request.Context()).
package gin402

import (
	"bufio"
	"io"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Wrap returns a gin middleware that runs mw around the rest of the chain.
// When mw refuses the request it writes the denial itself and the chain is
// aborted; when it passes the request on, the following handlers see the
// request mw passed (c.Request) and write through the writer mw passed
// (c.Writer), both restored when the chain returns. A status set without a
// body (c.Status, c.AbortWithStatus) is written through that writer as
// well, so a refund decided on the status sees it.
func Wrap(mw func(http.Handler) http.Handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		passed := false
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			passed = true
			outerWriter, outerRequest := c.Writer, c.Request
			inner := &responseWriter{w: w, outer: outerWriter, status: http.StatusOK, size: -1}
			c.Writer, c.Request = inner, r
			defer func() { c.Writer, c.Request = outerWriter, outerRequest }()
			c.Next()
			inner.WriteHeaderNow()
		})
		mw(next).ServeHTTP(c.Writer, c.Request)
		if !passed {
			c.Abort()
		}
	}
}

// responseWriter is a gin.ResponseWriter over the http.ResponseWriter a go402
// middleware passes on. Like gin's own, it holds the status back until the
// first write (or WriteHeaderNow), so handlers may change it until then.
type responseWriter struct {
	w      http.ResponseWriter
	outer  gin.ResponseWriter // for CloseNotify and Pusher, which w may lack
	status int
	size   int // -1 until the header is written
}

var _ gin.ResponseWriter = (*responseWriter)(nil)

// Unwrap returns the writer the middleware passed, for http.ResponseController.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.w }

func (rw *responseWriter) Header() http.Header { return rw.w.Header() }

func (rw *responseWriter) WriteHeader(code int) {
	if code > 0 && !rw.Written() {
		rw.status = code
	}
}

func (rw *responseWriter) WriteHeaderNow() {
	if !rw.Written() {
		rw.size = 0
		rw.w.WriteHeader(rw.status)
	}
}

func (rw *responseWriter) Write(b []byte) (int, error) {
	rw.WriteHeaderNow()
	n, err := rw.w.Write(b)
	rw.size += n
	return n, err
}

func (rw *responseWriter) WriteString(s string) (int, error) {
	rw.WriteHeaderNow()
	n, err := io.WriteString(rw.w, s)
	rw.size += n
	return n, err
}

func (rw *responseWriter) Status() int   { return rw.status }
func (rw *responseWriter) Size() int     { return rw.size }
func (rw *responseWriter) Written() bool { return rw.size != -1 }

func (rw *responseWriter) Flush() {
	rw.WriteHeaderNow()
	_ = http.NewResponseController(rw.w).Flush()
}

func (rw *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if rw.size < 0 {
		rw.size = 0
	}
	return http.NewResponseController(rw.w).Hijack()
}

func (rw *responseWriter) CloseNotify() <-chan bool { return rw.outer.CloseNotify() }

func (rw *responseWriter) Pusher() http.Pusher { return rw.outer.Pusher() }
