package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go402/go402/store"
)

// maxBodyBytes bounds a request body.
const maxBodyBytes = 1 << 20

// Options configures [New]. A nil *Options, like the zero value of each
// field, means the documented defaults.
type Options struct {
	// Clock returns the current time, by which rotated keys expire.
	// Default time.Now.
	Clock func() time.Time
	// Recorder, if set, is the last-use recorder whose pending uses key
	// listings merge in, so that they show uses not yet flushed.
	Recorder *Recorder
	// Logger, if set, logs store failures, which responses never detail.
	Logger *slog.Logger
	// OperationMemory is how many credit operation IDs the handler keeps
	// to answer a retried operation on a store without a [store.Ledger]
	// (see the package documentation). Default 10000; it must not be
	// negative.
	OperationMemory int
}

// Handler is the admin API over a store: an [http.Handler] that serves the
// routes of its OpenAPI document ([Handler.OpenAPI]) to callers its
// [Authenticator] accepts. Create one with [New]; it is safe for
// concurrent use.
type Handler struct {
	st     store.Admin
	lookup store.Store // st as a Store, to keep API keys out; may be nil
	ledger store.Ledger
	auth   Authenticator
	opts   Options
	ops    *operations
	mux    *http.ServeMux
}

// New returns the admin API over st, protected by auth. st may also
// implement [store.Ledger], whose entries the API then serves and which
// then deduplicates credit operations itself. A nil st or auth, or a
// negative Options.OperationMemory, is an error.
func New(st store.Admin, auth Authenticator, opts *Options) (*Handler, error) {
	if st == nil {
		return nil, errors.New("admin: nil store")
	}
	if auth == nil {
		return nil, errors.New("admin: nil Authenticator: the admin API must be protected")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.OperationMemory < 0 {
		return nil, errors.New("admin: Options.OperationMemory must not be negative")
	}
	if o.OperationMemory == 0 {
		o.OperationMemory = 10000
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	h := &Handler{st: st, auth: auth, opts: o, ops: newOperations(o.OperationMemory)}
	h.lookup, _ = st.(store.Store)
	h.ledger, _ = st.(store.Ledger)
	h.mux = http.NewServeMux()
	for _, rt := range h.routes() {
		h.mux.HandleFunc(rt.pattern, rt.serve)
	}
	return h, nil
}

// route is one operation of the API: its ServeMux pattern ("METHOD
// /path/{param}", as in the OpenAPI document) and its handler.
type route struct {
	pattern string
	serve   http.HandlerFunc
}

// routes lists every operation the handler serves.
func (h *Handler) routes() []route {
	return []route{
		{"GET /openapi.json", h.serveOpenAPI},
		{"GET /accounts", h.listAccounts},
		{"POST /accounts", h.createAccount},
		{"GET /accounts/{id}", h.getAccount},
		{"PATCH /accounts/{id}", h.updateAccount},
		{"GET /accounts/{id}/keys", h.listKeys},
		{"POST /accounts/{id}/keys", h.issueKey},
		{"POST /accounts/{id}/keys/{key}/revoke", h.revokeKey},
		{"POST /accounts/{id}/keys/{key}/rotate", h.rotateKey},
		{"POST /accounts/{id}/credits", h.moveCredits},
		{"GET /accounts/{id}/ledger", h.listLedger},
		{"GET /console", h.consoleHome},
		{"GET /console/accounts/{id}", h.consoleAccount},
	}
}

// ServeHTTP refuses API keys and callers the Authenticator refuses, then
// serves the request. The OpenAPI document needs no authentication.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodGet && r.URL.Path == "/openapi.json" {
		h.serveOpenAPI(w, r)
		return
	}
	if h.isAPIKey(r) {
		writeProblem(w, http.StatusForbidden, "api_key_refused", "API keys cannot use the admin API.")
		return
	}
	if err := h.auth.Authenticate(r); err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="admin"`)
		writeProblem(w, http.StatusUnauthorized, "unauthorized", "The admin credentials are missing or wrong.")
		return
	}
	if _, pattern := h.mux.Handler(r); pattern == "" {
		writeProblem(w, http.StatusNotFound, "no_route", "No admin route has this method and path.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	h.mux.ServeHTTP(w, r)
}

// isAPIKey reports whether the request carries an X-API-Key header, or a
// bearer token that is an API key of the store: such a request never
// reaches the Authenticator.
func (h *Handler) isAPIKey(r *http.Request) bool {
	if r.Header.Get("X-API-Key") != "" {
		return true
	}
	token, ok := bearer(r)
	if !ok || h.lookup == nil {
		return false
	}
	_, _, err := h.lookup.Lookup(r.Context(), store.DigestOf(token))
	return err == nil
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// storeFailed answers a store error: 404 for ErrNotFound, 422 for
// ErrInvalidAmount, else 503 with the error logged, never shown.
func (h *Handler) storeFailed(w http.ResponseWriter, r *http.Request, op string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, http.StatusNotFound, "not_found", "No such account or key.")
	case errors.Is(err, store.ErrInvalidAmount):
		writeProblem(w, http.StatusUnprocessableEntity, "invalid_amount", "The amount is out of range for this balance.")
	case errors.Is(err, context.Canceled):
		writeProblem(w, http.StatusServiceUnavailable, "canceled", "The request was cancelled.")
	default:
		if h.opts.Logger != nil {
			h.opts.Logger.ErrorContext(r.Context(), "admin: store failed", "op", op, "err", err)
		}
		writeProblem(w, http.StatusServiceUnavailable, "store_unavailable", "The store failed; try again.")
	}
}
