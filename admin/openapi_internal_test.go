package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/go402/go402/store"
)

// openAPIDoc is the part of the OpenAPI document the test reads.
type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

// TestOpenAPIMatchesRoutes checks that the document served is OpenAPI
// 3.1, that each of its operations is a route the handler really serves
// (the ServeMux resolves a request for it to that very pattern), that each
// route served is documented, and that every $ref resolves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	auth, _ := BearerTokens(strings.Repeat("t", 32))
	h, err := New(store.NewMemory(nil), auth, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	var doc openAPIDoc
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || rec.Code != 200 {
		t.Fatalf("GET /openapi.json: %d, %v", rec.Code, err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	var documented []string
	for path, item := range doc.Paths {
		for method := range item {
			if method == "parameters" {
				continue
			}
			pattern := strings.ToUpper(method) + " " + path
			documented = append(documented, pattern)
			concrete := strings.NewReplacer("{id}", "acct_1", "{key}", strings.Repeat("ab", 32)).Replace(path)
			_, got := h.mux.Handler(httptest.NewRequest(strings.ToUpper(method), concrete, nil))
			if got != pattern {
				t.Errorf("documented %s: the handler serves %s with %q", pattern, concrete, got)
			}
		}
	}
	for _, rt := range h.routes() {
		if !slices.Contains(documented, rt.pattern) {
			t.Errorf("route %s is not documented", rt.pattern)
		}
	}
	checkRefs(t, rec.Body.Bytes())
}

// checkRefs fails the test for every "$ref" of the document that does not
// resolve to a member of it.
func checkRefs(t *testing.T, raw []byte) {
	t.Helper()
	var root any
	if err := json.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && resolve(root, ref) == nil {
				t.Errorf("$ref %q does not resolve", ref)
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(root)
}

// resolve follows a local JSON pointer reference ("#/a/b").
func resolve(root any, ref string) any {
	if !strings.HasPrefix(ref, "#/") {
		return nil
	}
	v := root
	for _, part := range strings.Split(ref[2:], "/") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

// TestOperationsBounded checks that the operation memory forgets the
// oldest finished operation when full, never one in flight.
func TestOperationsBounded(t *testing.T) {
	o := newOperations(2)
	req := creditRequest{Kind: "topup", Amount: 1}
	for _, id := range []string{"a", "b"} {
		o.begin(id, "acct", req)
	}
	o.end("a", creditResult{Balance: 1}, true)
	if _, s := o.begin("c", "acct", req); s != opNew {
		t.Fatalf("third operation: state %d", s)
	}
	if _, s := o.begin("a", "acct", req); s != opNew {
		t.Errorf("oldest finished operation still remembered: state %d", s)
	}
	if _, s := o.begin("b", "acct", req); s != opBusy {
		t.Errorf("operation in flight forgotten: state %d", s)
	}
	if len(o.byID) > 3 || len(o.order) != len(o.byID) {
		t.Errorf("memory holds %d operations, order %d", len(o.byID), len(o.order))
	}
}

// TestOpenAPICreateAccountConflict checks that the document says POST
// /accounts answers 409 with a problem, as it does for an existing ID.
func TestOpenAPICreateAccountConflict(t *testing.T) {
	var doc openAPIDoc
	var post struct {
		Responses map[string]struct {
			Content map[string]json.RawMessage `json:"content"`
			Ref     string                     `json:"$ref"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(doc.Paths["/accounts"]["post"], &post); err != nil {
		t.Fatal(err)
	}
	r, ok := post.Responses["409"]
	if !ok {
		t.Fatal("POST /accounts documents no 409")
	}
	if _, ok := r.Content["application/problem+json"]; !ok && r.Ref != "#/components/responses/Problem" {
		t.Errorf("POST /accounts documents a 409 that is not a problem: %+v", r)
	}
	st := store.NewMemory(nil)
	auth, _ := BearerTokens(strings.Repeat("t", 32))
	h, err := New(st, auth, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{http.StatusCreated, http.StatusConflict} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/accounts", strings.NewReader(`{"id":"acct_1"}`))
		req.Header.Set("Authorization", "Bearer "+strings.Repeat("t", 32))
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("POST /accounts: %d %s, want %d", rec.Code, rec.Body, want)
		}
		if want == http.StatusConflict && !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/problem+json") {
			t.Errorf("409 with Content-Type %q, want a problem", rec.Header().Get("Content-Type"))
		}
	}
}
