package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go402/go402/admin"
	"github.com/go402/go402/store"
)

const testToken = "cli-test-admin-token-0123456789"

// ledgerMemory is a memory store that also keeps a ledger of its top-ups,
// applying each operation ID once, as a ledger store does.
type ledgerMemory struct {
	*store.Memory
	mu      sync.Mutex
	entries []store.LedgerEntry
	applied map[string]int64
}

func (l *ledgerMemory) TopUp(ctx context.Context, id string, amount int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	op, _ := store.OperationFrom(ctx)
	if b, ok := l.applied[op.ID]; ok {
		return b, nil
	}
	b, err := l.Memory.TopUp(ctx, id, amount)
	if err != nil {
		return b, err
	}
	l.applied[op.ID] = b
	l.entries = append(l.entries, store.LedgerEntry{Seq: int64(len(l.entries) + 1), AccountID: id,
		Kind: "topup", Amount: amount, Balance: b, OperationID: op.ID})
	return b, nil
}

func (l *ledgerMemory) Entries(_ context.Context, id string, q store.LedgerQuery) ([]store.LedgerEntry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []store.LedgerEntry
	for _, e := range l.entries {
		if e.AccountID == id && e.Seq > q.After && (q.Limit <= 0 || len(out) < q.Limit) {
			out = append(out, e)
		}
	}
	return out, nil
}

// cliEnv is the admin API on httptest and a way to run the CLI against it.
type cliEnv struct {
	t   *testing.T
	st  *ledgerMemory
	srv *httptest.Server
}

func newCLIEnv(t *testing.T) *cliEnv {
	st := &ledgerMemory{Memory: store.NewMemory(nil), applied: map[string]int64{}}
	auth, err := admin.BearerTokens(testToken)
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(st, auth, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &cliEnv{t: t, st: st, srv: srv}
}

// run runs the CLI with the environment pointing at the server.
func (e *cliEnv) run(args ...string) (code int, stdout, stderr string) {
	var out, errw bytes.Buffer
	env := map[string]string{"GO402_ADMIN_URL": e.srv.URL + "/admin/", "GO402_ADMIN_TOKEN": testToken}
	code = run(args, &out, &errw, func(k string) string { return env[k] }, e.srv.Client())
	return code, out.String(), errw.String()
}

// ok runs the CLI, fails the test unless it succeeded, and returns its
// output.
func (e *cliEnv) ok(args ...string) string {
	e.t.Helper()
	code, out, errs := e.run(args...)
	if code != 0 || errs != "" {
		e.t.Fatalf("go402 %q: exit %d, stderr %q", args, code, errs)
	}
	return out
}

// okJSON runs the CLI with -json and decodes its output.
func (e *cliEnv) okJSON(v any, args ...string) {
	e.t.Helper()
	out := e.ok(append([]string{"-json"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("go402 -json %q: %v in %q", args, err, out)
	}
}

// TestRoundTrip runs every command against the admin API, in JSON and as a
// table, and checks the store.
func TestRoundTrip(t *testing.T) {
	e := newCLIEnv(t)
	ctx := context.Background()
	var a store.Account
	e.okJSON(&a, "accounts", "create", "acct_1", "-plan", "free", "-balance", "5", "-features", "a,b")
	if a.ID != "acct_1" || a.Balance != 5 || len(a.Features) != 2 {
		t.Fatalf("created %+v", a)
	}
	if out := e.ok("accounts", "create", "acct_2"); !strings.Contains(out, "acct_2") || !strings.Contains(out, "BALANCE") {
		t.Errorf("table of a created account: %q", out)
	}
	e.ok("accounts", "update", "acct_1", "-plan", "pro", "-status", "trialing")
	if got, _ := e.st.Account(ctx, "acct_1"); got.Plan != "pro" || got.Status != store.StatusTrialing {
		t.Errorf("after update: %+v", got)
	}
	if out := e.ok("accounts", "get", "acct_1"); !strings.Contains(out, "pro") || !strings.Contains(out, "trialing") {
		t.Errorf("accounts get: %q", out)
	}
	var page struct{ Accounts []store.Account }
	e.okJSON(&page, "accounts", "list", "-limit", "1", "-after", "acct_1")
	if len(page.Accounts) != 1 || page.Accounts[0].ID != "acct_2" {
		t.Errorf("accounts list -after acct_1 -limit 1: %+v", page.Accounts)
	}
	if out := e.ok("accounts", "list"); !strings.Contains(out, "acct_1") || !strings.Contains(out, "acct_2") {
		t.Errorf("accounts list: %q", out)
	}
	checkKeys(t, e)
	checkCredits(t, e)
}

// checkKeys round-trips keys issue, list, rotate and revoke.
func checkKeys(t *testing.T, e *cliEnv) {
	ctx := context.Background()
	var k struct {
		Key    string
		Digest store.Digest
	}
	e.okJSON(&k, "keys", "issue", "acct_1", "-prefix", "sk_test_")
	if !strings.HasPrefix(k.Key, "sk_test_") || k.Digest != store.DigestOf(k.Key) {
		t.Fatalf("issued %+v", k)
	}
	if _, _, err := e.st.Lookup(ctx, k.Digest); err != nil {
		t.Fatalf("issued key not in the store: %v", err)
	}
	if out := e.ok("keys", "issue", "acct_1"); !strings.Contains(out, "shown once") || !strings.Contains(out, "sk_live_") {
		t.Errorf("keys issue table: %q", out)
	}
	list := e.ok("keys", "list", "acct_1")
	if strings.Contains(list, k.Key) || !strings.Contains(list, k.Digest.String()) {
		t.Errorf("keys list shows the raw key or lacks the digest: %q", list)
	}
	var rot struct {
		New struct {
			Key    string
			Digest store.Digest
		}
		Old store.Key
	}
	e.okJSON(&rot, "keys", "rotate", "acct_1", k.Digest.String(), "-overlap", "1h")
	if !strings.HasPrefix(rot.New.Key, "sk_test_") || rot.Old.ExpiresAt.IsZero() {
		t.Errorf("rotate: %+v", rot)
	}
	e.ok("keys", "revoke", "acct_1", rot.New.Digest.String())
	if got, _, _ := e.st.Lookup(ctx, rot.New.Digest); !got.Revoked {
		t.Error("keys revoke left the key unrevoked")
	}
}

// checkCredits round-trips top-ups, their retry, adjustments and ledger.
func checkCredits(t *testing.T, e *cliEnv) {
	var res struct{ Balance int64 }
	e.okJSON(&res, "credits", "topup", "acct_1", "100", "-op", "op_1")
	if res.Balance != 105 {
		t.Errorf("top-up: balance %d, want 105", res.Balance)
	}
	if out := e.ok("credits", "topup", "acct_1", "100", "-op", "op_1"); !strings.Contains(out, "balance 105") {
		t.Errorf("retried top-up: %q", out)
	}
	e.okJSON(&res, "credits", "adjust", "acct_1", "-5")
	if res.Balance != 100 {
		t.Errorf("adjust -5: balance %d, want 100", res.Balance)
	}
	var page struct{ Entries []store.LedgerEntry }
	e.okJSON(&page, "ledger", "acct_1")
	if len(page.Entries) != 1 || page.Entries[0].OperationID != "op_1" || page.Entries[0].Amount != 100 {
		t.Errorf("ledger: %+v", page.Entries)
	}
	if out := e.ok("ledger", "acct_1", "-limit", "10"); !strings.Contains(out, "op_1") || !strings.Contains(out, "topup") {
		t.Errorf("ledger table: %q", out)
	}
}

// TestErrors checks that failures go to stderr with a non-zero exit.
func TestErrors(t *testing.T) {
	e := newCLIEnv(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"accounts", "get", "nobody"}, 1, "No such account"},
		{[]string{"accounts", "get"}, 2, "want ID"},
		{[]string{"frobnicate", "now"}, 2, "unknown command"},
		{[]string{}, 2, "no command"},
		{[]string{"credits", "topup", "acct", "many"}, 2, "AMOUNT"},
		{[]string{"-token", "wrong-token-wrong-token-wrong", "accounts", "list"}, 1, "401"},
		{[]string{"-url", "", "accounts", "list"}, 2, "no admin API URL"},
	} {
		code, out, errs := e.run(tc.args...)
		if code != tc.code || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("go402 %q: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errs, tc.code, tc.want)
		}
	}
	if code, out, _ := e.run("help"); code != 0 || !strings.Contains(out, "keys rotate") {
		t.Errorf("help: %d %q", code, out)
	}
}
