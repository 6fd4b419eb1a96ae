package admin_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go402/go402/admin"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// TestIssuedKeyWorksAndIsShownOnce checks that a key issued through the API
// works on a paywalled route and that its raw value is in no later
// response: listings, reads, rotation, revocation.
func TestIssuedKeyWorksAndIsShownOnce(t *testing.T) {
	e := newEnv(t)
	e.account("acct_1", 10)
	k := e.issue("acct_1")
	if !strings.HasPrefix(k.Key, "sk_live_") || k.Digest != store.DigestOf(k.Key) || strings.Contains(k.Prefix, k.Key) {
		t.Fatalf("issued %+v", k)
	}
	if got := e.paid(k.Key); got != http.StatusOK {
		t.Fatalf("paywalled route with the issued key: %d", got)
	}
	e.bodies = nil
	keys := e.keys("acct_1")
	if len(keys) != 1 || keys[0].Prefix != k.Prefix || keys[0].Digest != k.Digest {
		t.Errorf("keys = %+v", keys)
	}
	e.balance("acct_1")
	e.do("GET", "/accounts", nil, nil)
	e.do("GET", "/accounts/acct_1/keys/"+k.Digest.String()+"/rotate", nil, nil) // wrong method: a problem
	e.do("POST", "/accounts/acct_1/keys/"+k.Digest.String()+"/rotate", map[string]any{"overlap_seconds": 60}, nil)
	e.do("POST", "/accounts/acct_1/keys/"+k.Digest.String()+"/revoke", nil, nil)
	e.keys("acct_1")
	for _, b := range e.bodies {
		if strings.Contains(b, k.Key) {
			t.Fatalf("a later response contains the raw key: %s", b)
		}
	}
	if len(e.bodies) != 7 {
		t.Fatalf("checked %d responses, want 7", len(e.bodies))
	}
}

// TestRotationOverlap checks that after a rotation both keys work for the
// overlap, then only the new one.
func TestRotationOverlap(t *testing.T) {
	e := newEnv(t)
	e.account("acct_1", 100)
	old := e.issue("acct_1")
	var rot struct {
		New issuedKey
		Old store.Key
	}
	e.want("rotate", e.do("POST", "/accounts/acct_1/keys/"+old.Digest.String()+"/rotate",
		map[string]any{"overlap_seconds": 3600}, &rot), http.StatusCreated)
	if rot.New.Key == "" || rot.New.Digest == old.Digest || !strings.HasPrefix(rot.New.Key, "sk_live_") {
		t.Fatalf("rotation returned new key %+v", rot.New)
	}
	if want := e.clock.Now().Add(time.Hour); !rot.Old.ExpiresAt.Equal(want) {
		t.Errorf("old key expires at %v, want %v", rot.Old.ExpiresAt, want)
	}
	for _, k := range []string{old.Key, rot.New.Key} {
		if got := e.paid(k); got != http.StatusOK {
			t.Errorf("during the overlap: %d", got)
		}
	}
	e.clock.Advance(time.Hour - time.Second)
	if got := e.paid(old.Key); got != http.StatusOK {
		t.Errorf("old key a second before the overlap ends: %d", got)
	}
	e.clock.Advance(time.Second)
	if got := e.paid(old.Key); got != http.StatusUnauthorized {
		t.Errorf("old key after the overlap: %d, want 401", got)
	}
	if got := e.paid(rot.New.Key); got != http.StatusOK {
		t.Errorf("new key after the overlap: %d", got)
	}
}

// TestRotationWithoutOverlapRevokes checks that a rotation with no overlap
// revokes the old key at once, and that a revoked key cannot be rotated.
func TestRotationWithoutOverlapRevokes(t *testing.T) {
	e := newEnv(t)
	e.account("acct_1", 100)
	old := e.issue("acct_1")
	path := "/accounts/acct_1/keys/" + old.Digest.String() + "/rotate"
	e.want("rotate", e.do("POST", path, map[string]any{"overlap_seconds": 0}, nil), http.StatusCreated)
	if got := e.paid(old.Key); got != http.StatusUnauthorized {
		t.Errorf("old key after a rotation without overlap: %d", got)
	}
	e.want("rotate revoked", e.do("POST", path, map[string]any{}, nil), http.StatusConflict)
	e.want("negative overlap", e.do("POST", "/accounts/acct_1/keys/"+e.issue("acct_1").Digest.String()+"/rotate",
		map[string]any{"overlap_seconds": -1}, nil), http.StatusUnprocessableEntity)
}

// TestRevokeTakesEffect checks that a revoked key is refused at once and
// listed as revoked.
func TestRevokeTakesEffect(t *testing.T) {
	e := newEnv(t)
	e.account("acct_1", 100)
	k, other := e.issue("acct_1"), e.issue("acct_1")
	e.paid(k.Key)
	e.want("revoke", e.do("POST", "/accounts/acct_1/keys/"+k.Digest.String()+"/revoke", nil, nil), http.StatusOK)
	if got := e.paid(k.Key); got != http.StatusUnauthorized {
		t.Errorf("revoked key: %d, want 401", got)
	}
	if got := e.paid(other.Key); got != http.StatusOK {
		t.Errorf("the account's other key: %d", got)
	}
	for _, l := range e.keys("acct_1") {
		if l.Revoked != (l.Digest == k.Digest) {
			t.Errorf("key %s listed with Revoked %v", l.Prefix, l.Revoked)
		}
	}
	e.want("revoke in another account", e.do("POST", "/accounts/acct_2/keys/"+other.Digest.String()+"/revoke", nil, nil), http.StatusNotFound)
	e.want("revoke a bad digest", e.do("POST", "/accounts/acct_1/keys/xyz/revoke", nil, nil), http.StatusBadRequest)
}

// TestTopUpRetriedCreditsOnce checks that a top-up retried with the same
// operation ID credits once and answers the same, and that the ID cannot
// be reused for another amount.
func TestTopUpRetriedCreditsOnce(t *testing.T) {
	e := newEnv(t)
	e.account("acct_1", 10)
	req := map[string]any{"kind": "topup", "amount": 500, "operation_id": "op_1"}
	var first, second struct {
		Balance  int64
		Replayed bool
	}
	e.want("top-up", e.do("POST", "/accounts/acct_1/credits", req, &first), http.StatusOK)
	e.want("retry", e.do("POST", "/accounts/acct_1/credits", req, &second), http.StatusOK)
	if first.Balance != 510 || second.Balance != 510 || first.Replayed || !second.Replayed {
		t.Errorf("top-up then retry answered %+v, %+v", first, second)
	}
	if got := e.balance("acct_1"); got != 510 {
		t.Errorf("balance after a retried top-up: %d, want 510", got)
	}
	req["amount"] = 5
	e.want("op ID reused", e.do("POST", "/accounts/acct_1/credits", req, nil), http.StatusUnprocessableEntity)
	adj := map[string]any{"kind": "adjust", "amount": -600, "operation_id": "op_2"}
	e.want("overdraw", e.do("POST", "/accounts/acct_1/credits", adj, nil), http.StatusUnprocessableEntity)
	adj["amount"] = -10
	e.want("adjust", e.do("POST", "/accounts/acct_1/credits", adj, nil), http.StatusOK)
	if got := e.balance("acct_1"); got != 500 {
		t.Errorf("balance after an adjustment of -10: %d, want 500", got)
	}
	for _, bad := range []map[string]any{
		{"kind": "topup", "amount": 0, "operation_id": "op_3"},
		{"kind": "topup", "amount": 1},
		{"kind": "gift", "amount": 1, "operation_id": "op_4"},
	} {
		e.want("bad credit", e.do("POST", "/accounts/acct_1/credits", bad, nil), http.StatusUnprocessableEntity)
	}
	e.want("unknown account", e.do("POST", "/accounts/nobody/credits",
		map[string]any{"kind": "topup", "amount": 1, "operation_id": "op_5"}, nil), http.StatusNotFound)
	e.want("retry after not found", e.do("POST", "/accounts/nobody/credits",
		map[string]any{"kind": "topup", "amount": 1, "operation_id": "op_5"}, nil), http.StatusNotFound)
}

// TestAccounts checks creating, reading, updating and listing accounts.
func TestAccounts(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"c", "a", "e", "b", "d"} {
		e.account(id, 1)
	}
	e.want("duplicate", e.do("POST", "/accounts", store.Account{ID: "a"}, nil), http.StatusConflict)
	e.want("invalid", e.do("POST", "/accounts", store.Account{ID: "x", Balance: -1}, nil), http.StatusUnprocessableEntity)
	var ids []string
	after := ""
	for range 5 {
		var p struct {
			Accounts []store.Account
			Next     string
		}
		e.want("list", e.do("GET", "/accounts?limit=2&after="+after, nil, &p), http.StatusOK)
		for _, a := range p.Accounts {
			ids = append(ids, a.ID)
		}
		if after = p.Next; after == "" {
			break
		}
	}
	if strings.Join(ids, ",") != "a,b,c,d,e" {
		t.Errorf("pages listed %q", ids)
	}
	var a store.Account
	e.want("patch", e.do("PATCH", "/accounts/a", map[string]any{
		"plan": "team", "status": "past_due", "features": []string{"x"}, "rate_limit": map[string]any{"rate": 2, "burst": 5},
	}, &a), http.StatusOK)
	if a.Plan != "team" || a.Status != store.StatusPastDue || a.RateLimit == nil || a.RateLimit.Burst != 5 || a.Balance != 1 {
		t.Errorf("patched account %+v", a)
	}
	e.want("patch clears rate", e.do("PATCH", "/accounts/a", map[string]any{"rate_limit": nil}, &a), http.StatusOK)
	if got, _ := e.st.Account(ctx, "a"); got.RateLimit != nil || got.Plan != "team" {
		t.Errorf("stored after clearing the rate: %+v", got)
	}
	e.want("bad status", e.do("PATCH", "/accounts/a", map[string]any{"status": "gone"}, nil), http.StatusUnprocessableEntity)
	e.want("unknown field", e.do("PATCH", "/accounts/a", map[string]any{"balance": 5}, nil), http.StatusBadRequest)
	e.want("patch unknown", e.do("PATCH", "/accounts/zz", map[string]any{"plan": "x"}, nil), http.StatusNotFound)
	e.want("bad limit", e.do("GET", "/accounts?limit=0", nil, nil), http.StatusBadRequest)
	e.want("no ledger", e.do("GET", "/accounts/a/ledger", nil, nil), http.StatusNotFound)
	e.want("no route", e.do("GET", "/nothing", nil, nil), http.StatusNotFound)
}

// TestAccess checks that the admin API needs the admin token, refuses API
// keys before its Authenticator sees them, and that New needs an
// Authenticator.
func TestAccess(t *testing.T) {
	e := newEnv(t)
	e.account("acct_1", 10)
	k := e.issue("acct_1")
	e.want("no token", e.doAs("", "GET", "/accounts", nil, nil), http.StatusUnauthorized)
	e.want("wrong token", e.doAs(adminToken+"x", "GET", "/accounts", nil, nil), http.StatusUnauthorized)
	e.want("API key", e.doAs(k.Key, "GET", "/accounts", nil, nil), http.StatusForbidden)
	e.want("OpenAPI needs no token", e.doAs("", "GET", "/openapi.json", nil, nil), http.StatusOK)

	var seen []string
	spy := admin.AuthenticatorFunc(func(r *http.Request) error {
		seen = append(seen, r.Header.Get("Authorization"))
		return nil
	})
	h, err := admin.New(e.st, spy, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, hdr := range [][2]string{{"Authorization", "Bearer " + k.Key}, {"X-API-Key", k.Key}} {
		req, _ := http.NewRequest("GET", "/accounts", nil)
		req.Header.Set(hdr[0], hdr[1])
		rec := newRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Errorf("API key in %s: %d, want 403", hdr[0], rec.Code)
		}
	}
	if len(seen) != 0 {
		t.Errorf("the Authenticator saw %d API keys", len(seen))
	}
	if _, err := admin.New(e.st, nil, nil); err == nil {
		t.Error("New accepted a nil Authenticator")
	}
	for _, bad := range [][]string{nil, {"short"}, {adminToken, ""}} {
		if _, err := admin.BearerTokens(bad...); err == nil {
			t.Errorf("BearerTokens(%q) accepted", bad)
		}
	}
}

// TestLastUsed checks that uses are noted in memory, written to the store
// only by a flush, and shown by the admin API.
func TestLastUsed(t *testing.T) {
	e := newEnv(t)
	e.account("acct_1", 10)
	k := e.issue("acct_1")
	used := e.clock.Now()
	e.paid(k.Key)
	e.clock.Advance(time.Minute)
	e.paid(k.Key)
	stored := func() time.Time {
		keys, err := e.st.Keys(ctx, "acct_1")
		if err != nil || len(keys) != 1 {
			t.Fatalf("Keys: %v, %v", keys, err)
		}
		return keys[0].LastUsedAt
	}
	if got := stored(); !got.IsZero() {
		t.Fatalf("the store was written before a flush: LastUsedAt %v", got)
	}
	if got := e.keys("acct_1")[0].LastUsedAt; !got.Equal(used.Add(time.Minute)) {
		t.Errorf("listed LastUsedAt before a flush %v, want %v", got, used.Add(time.Minute))
	}
	if err := e.rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := stored(); !got.Equal(used.Add(time.Minute)) {
		t.Errorf("stored LastUsedAt after a flush %v, want %v", got, used.Add(time.Minute))
	}
	if got := e.keys("acct_1")[0].LastUsedAt; !got.Equal(used.Add(time.Minute)) {
		t.Errorf("listed LastUsedAt after a flush %v", got)
	}
}

// TestRefusalsBounded checks that a Recorder keeps the 200 most recent
// refusals, newest first, per account or all.
func TestRefusalsBounded(t *testing.T) {
	rec, err := admin.NewRecorder(store.NewMemory(nil), 0)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 450 {
		acct := "a"
		if i%2 == 1 {
			acct = "b"
		}
		rec.Record(ctx, paywall.Decision{Time: t0.Add(time.Duration(i) * time.Second), Step: "charge",
			Code: paywall.CodeInsufficientCredits, Status: 402, AccountID: acct})
	}
	rec.Record(ctx, paywall.Decision{Step: "charge", Allowed: true})
	all := rec.Refusals("")
	if len(all) != 200 || !all[0].Time.Equal(t0.Add(449*time.Second)) || !all[199].Time.Equal(t0.Add(250*time.Second)) {
		t.Fatalf("kept %d refusals, newest %v, oldest %v", len(all), all[0].Time, all[len(all)-1].Time)
	}
	if b := rec.Refusals("b"); len(b) != 100 || b[0].AccountID != "b" {
		t.Errorf("refusals of b: %d", len(b))
	}
}

// TestAccountCaps checks that PATCH sets, keeps the state of and removes a
// spend cap and thresholds, and that accounts JSON shows them.
func TestAccountCaps(t *testing.T) {
	e := newEnv(t)
	e.account("a", 100)
	var a store.Account
	e.want("set cap", e.do("PATCH", "/accounts/a", map[string]any{
		"spend_cap":  map[string]any{"limit": 10, "period": "day"},
		"thresholds": []map[string]any{{"kind": "cap_percent", "value": 50}},
	}, &a), http.StatusOK)
	if a.SpendCap == nil || a.SpendCap.Limit != 10 || a.SpendCap.Period != store.PeriodDay || len(a.Thresholds) != 1 {
		t.Fatalf("patched account %+v", a)
	}
	res, err := e.st.Spend(ctx, "a", 6)
	if err != nil || !res.OK || len(res.Crossed()) != 1 {
		t.Fatalf("Spend(6) = %+v, %v", res, err)
	}
	e.want("raise cap", e.do("PATCH", "/accounts/a", map[string]any{
		"spend_cap":  map[string]any{"limit": 12, "period": "day", "spent": 0},
		"thresholds": []map[string]any{{"kind": "cap_percent", "value": 50}},
	}, &a), http.StatusOK)
	if a.SpendCap == nil || a.SpendCap.Limit != 12 || a.SpendCap.Spent != 6 || a.Thresholds[0].Marked.IsZero() {
		t.Errorf("raised cap lost its state: %+v %+v", a.SpendCap, a.Thresholds)
	}
	if res, _ := e.st.Spend(ctx, "a", 7); res.OK {
		t.Errorf("Spend(7) beyond the raised cap passed: %+v", res)
	}
	var raw map[string]any
	e.want("get", e.do("GET", "/accounts/a", nil, &raw), http.StatusOK)
	if _, ok := raw["spend_cap"]; !ok {
		t.Errorf("accounts JSON lacks spend_cap: %v", raw)
	}
	e.want("bad threshold", e.do("PATCH", "/accounts/a", map[string]any{
		"thresholds": []map[string]any{{"kind": "cap_percent", "value": 101}},
	}, nil), http.StatusUnprocessableEntity)
	e.want("clear cap", e.do("PATCH", "/accounts/a", map[string]any{"spend_cap": nil, "thresholds": []any{}}, &a), http.StatusOK)
	if got, _ := e.st.Account(ctx, "a"); got.SpendCap != nil || len(got.Thresholds) != 0 {
		t.Errorf("stored after clearing the cap: %+v", got)
	}
}
