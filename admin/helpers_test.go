package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go402/go402/admin"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
	"github.com/go402/go402/store/storetest"
)

// adminToken is the admin credential of the tests.
const adminToken = "test-admin-token-0123456789abcdef"

// env is an admin API and a paywalled route on one memory store and one
// fake clock.
type env struct {
	t      *testing.T
	st     *store.Memory
	clock  *storetest.Clock
	rec    *admin.Recorder
	h      *admin.Handler
	admin  *httptest.Server
	api    *httptest.Server
	bodies []string // every admin response body since the last reset
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clock := new(storetest.Clock)
	st := store.NewMemory(&store.MemoryOptions{Clock: clock.Now})
	rec, err := admin.NewRecorder(st, 0)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := admin.BearerTokens(adminToken)
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(st, auth, &admin.Options{Clock: clock.Now, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	pw, err := paywall.New(st, &paywall.Options{Clock: clock.Now, OnDecision: rec.Record})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /paid", pw.Authenticate(pw.Charge(1)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "paid content")
	}))))
	e := &env{t: t, st: st, clock: clock, rec: rec, h: h, admin: httptest.NewServer(h), api: httptest.NewServer(mux)}
	t.Cleanup(e.admin.Close)
	t.Cleanup(e.api.Close)
	return e
}

// do sends an admin request with the admin token and returns the status
// and body, decoding it into out if not nil.
func (e *env) do(method, path string, body any, out any) int {
	e.t.Helper()
	return e.doAs(adminToken, method, path, body, out)
}

// doAs is do with another bearer token (none if empty).
func (e *env) doAs(token, method, path string, body any, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.admin.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	e.bodies = append(e.bodies, string(b))
	if resp.StatusCode >= 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		e.t.Errorf("%s %s: status %d with Content-Type %q, want a problem", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

// want checks a status.
func (e *env) want(what string, got, want int) {
	e.t.Helper()
	if got != want {
		e.t.Fatalf("%s: status %d, want %d (last body %s)", what, got, want, e.bodies[len(e.bodies)-1])
	}
}

// paid calls the paywalled route with key and returns the status.
func (e *env) paid(key string) int {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.api.URL+"/paid", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// issuedKey is the answer to issuing a key.
type issuedKey struct {
	Key    string       `json:"key"`
	Digest store.Digest `json:"digest"`
	Prefix string       `json:"prefix"`
}

// account creates an account with a balance through the API.
func (e *env) account(id string, balance int64) {
	e.t.Helper()
	e.want("create account", e.do("POST", "/accounts", store.Account{ID: id, Plan: "pro", Balance: balance}, nil), http.StatusCreated)
}

// issue issues a key of id through the API.
func (e *env) issue(id string) issuedKey {
	e.t.Helper()
	var k issuedKey
	e.want("issue key", e.do("POST", "/accounts/"+id+"/keys", map[string]any{}, &k), http.StatusCreated)
	return k
}

// keys lists an account's keys through the API.
func (e *env) keys(id string) []store.Key {
	e.t.Helper()
	var l struct{ Keys []store.Key }
	e.want("list keys", e.do("GET", "/accounts/"+id+"/keys", nil, &l), http.StatusOK)
	return l.Keys
}

// balance reads an account's balance through the API.
func (e *env) balance(id string) int64 {
	e.t.Helper()
	var a store.Account
	e.want("get account", e.do("GET", "/accounts/"+id, nil, &a), http.StatusOK)
	return a.Balance
}

var ctx = context.Background()

// newRecorder returns an httptest.ResponseRecorder.
func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
