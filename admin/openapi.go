package admin

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI 3.1 description of the routes the
// Handler serves.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the OpenAPI 3.1 document of the admin API, also served
// at GET /openapi.json.
func (h *Handler) OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }

// serveOpenAPI serves GET /openapi.json.
func (h *Handler) serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIDocument) //nolint:errcheck // the client may be gone
}
