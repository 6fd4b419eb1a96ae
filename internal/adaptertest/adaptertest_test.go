package adaptertest_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/go402/go402/internal/adaptertest"
)

// TestNetHTTP runs the suite on plain net/http, where the middlewares need
// no adapter: what every framework's router is held to.
func TestNetHTTP(t *testing.T) {
	adaptertest.Run(t, func(mws []func(http.Handler) http.Handler, reached func()) http.Handler {
		mux := http.NewServeMux()
		mux.HandleFunc(adaptertest.PathCaller, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, adaptertest.CallerID(r))
		})
		mux.HandleFunc(adaptertest.PathJSON500, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":"boom"}`)
		})
		mux.Handle(adaptertest.PathAbort503, status(http.StatusServiceUnavailable))
		mux.Handle(adaptertest.PathStatus502, status(http.StatusBadGateway))
		mux.HandleFunc(adaptertest.PathError500, func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		})
		mux.HandleFunc(adaptertest.PathPanic, func(http.ResponseWriter, *http.Request) { panic("handler bug") })
		mux.HandleFunc(adaptertest.PathTeapot, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusTeapot)
			_, _ = io.WriteString(w, "short and stout")
		})
		var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reached()
			mux.ServeHTTP(w, r)
		})
		for i := len(mws) - 1; i >= 0; i-- {
			h = mws[i](h)
		}
		return recovery(h)
	})
}

// status answers every request with code and no body.
func status(code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) })
}

// recovery answers 500 when next panics, as a framework's recovery does.
func recovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if recover() != nil {
				w.WriteHeader(http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}
