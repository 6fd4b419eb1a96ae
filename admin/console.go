package admin

import (
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/go402/go402/store"
)

// consoleTemplates are the console's pages: plain HTML and a little CSS,
// no script.
var consoleTemplates = template.Must(template.New("layout").Funcs(template.FuncMap{
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"status": func(s store.Status) store.Status {
		if s == "" {
			return store.StatusActive
		}
		return s
	},
	"path": url.PathEscape,
}).Parse(`{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.}} · go402 console</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#1d1d1f}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;min-width:40em}th,td{text-align:left;padding:.3em .8em;border-bottom:1px solid #ddd}
th{background:#f4f4f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.revoked{color:#a00}.muted{color:#777}a{color:#0645ad}
</style></head><body>{{end}}
{{define "refusals"}}<h2>Recent refusals</h2>{{if .}}<table><tr><th>Time</th><th>Status</th><th>Code</th><th>Step</th><th>Account</th><th>Key</th><th>Route</th></tr>
{{range .}}<tr><td>{{stamp .Time}}</td><td>{{.Status}}</td><td>{{.Code}}</td><td>{{.Step}}</td><td>{{.AccountID}}</td><td>{{.KeyPrefix}}</td><td>{{.Route}}</td></tr>
{{end}}</table>{{else}}<p class="muted">None recorded.</p>{{end}}{{end}}
{{define "home"}}{{template "head" "Accounts"}}<h1>Accounts</h1>
<table><tr><th>Account</th><th>Plan</th><th>Status</th><th>Balance</th></tr>
{{range .Accounts}}<tr><td><a href="console/accounts/{{path .ID}}">{{.ID}}</a></td><td>{{.Plan}}</td><td>{{status .Status}}</td><td class="n">{{.Balance}}</td></tr>
{{else}}<tr><td colspan="4" class="muted">No accounts.</td></tr>{{end}}</table>
{{if .Next}}<p><a href="console?after={{.Next}}">Next page</a></p>{{end}}
{{if .Recorded}}{{template "refusals" .Refusals}}{{end}}</body></html>{{end}}
{{define "account"}}{{template "head" .Account.ID}}<p><a href="../../console">All accounts</a></p>
<h1>Account {{.Account.ID}}</h1>
<table><tr><th>Plan</th><th>Status</th><th>Balance</th><th>Period end</th><th>Features</th></tr>
<tr><td>{{.Account.Plan}}</td><td>{{status .Account.Status}}</td><td class="n">{{.Account.Balance}}</td><td>{{stamp .Account.PeriodEnd}}</td><td>{{range $i, $f := .Account.Features}}{{if $i}}, {{end}}{{$f}}{{end}}</td></tr></table>
<h2>Keys</h2><table><tr><th>Key</th><th>State</th><th>Created</th><th>Expires</th><th>Last used</th></tr>
{{range .Keys}}<tr><td><code>{{.Prefix}}…</code></td><td{{if .Revoked}} class="revoked">revoked{{else}}>active{{end}}</td><td>{{stamp .CreatedAt}}</td><td>{{stamp .ExpiresAt}}</td><td>{{stamp .LastUsedAt}}</td></tr>
{{else}}<tr><td colspan="5" class="muted">No keys.</td></tr>{{end}}</table>
{{if .HasLedger}}<h2>Ledger</h2><table><tr><th>#</th><th>Time</th><th>Kind</th><th>Amount</th><th>Balance</th><th>Operation</th></tr>
{{range .Ledger}}<tr><td>{{.Seq}}</td><td>{{stamp .Time}}</td><td>{{.Kind}}</td><td class="n">{{.Amount}}</td><td class="n">{{.Balance}}</td><td>{{.OperationID}}</td></tr>
{{else}}<tr><td colspan="6" class="muted">No entries.</td></tr>{{end}}</table>{{end}}
{{if .Recorded}}{{template "refusals" .Refusals}}{{end}}</body></html>{{end}}`))

// consolePageSize is how many accounts a console page lists.
const consolePageSize = 50

// consoleHome serves GET /console: accounts with balance, plan and status,
// and the recent refusals.
func (h *Handler) consoleHome(w http.ResponseWriter, r *http.Request) {
	accts, err := h.st.Accounts(r.Context(), r.URL.Query().Get("after"), consolePageSize)
	if err != nil {
		h.storeFailed(w, r, "accounts", err)
		return
	}
	data := struct {
		Accounts []store.Account
		Next     string
		Recorded bool
		Refusals []Refusal
	}{Accounts: accts, Recorded: h.opts.Recorder != nil}
	if len(accts) == consolePageSize {
		data.Next = accts[len(accts)-1].ID
	}
	if data.Recorded {
		data.Refusals = h.opts.Recorder.Refusals("")
	}
	renderConsole(w, "home", data)
}

// consoleAccount serves GET /console/accounts/{id}: the account, its keys
// by display prefix, its ledger where the store keeps one, and its recent
// refusals.
func (h *Handler) consoleAccount(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a, err := h.st.Account(r.Context(), id)
	if err != nil {
		h.storeFailed(w, r, "account", err)
		return
	}
	data := struct {
		Account   store.Account
		Keys      []store.Key
		HasLedger bool
		Ledger    []store.LedgerEntry
		Recorded  bool
		Refusals  []Refusal
	}{Account: a, HasLedger: h.ledger != nil, Recorded: h.opts.Recorder != nil}
	if data.Keys, err = h.st.Keys(r.Context(), id); err != nil {
		h.storeFailed(w, r, "keys", err)
		return
	}
	h.mergePending(data.Keys)
	if data.HasLedger {
		if data.Ledger, err = h.ledger.Entries(r.Context(), id, store.LedgerQuery{Limit: consolePageSize}); err != nil {
			h.storeFailed(w, r, "ledger", err)
			return
		}
	}
	if data.Recorded {
		data.Refusals = h.opts.Recorder.Refusals(id)
	}
	renderConsole(w, "account", data)
}

// renderConsole writes a console page.
func renderConsole(w http.ResponseWriter, page string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	consoleTemplates.ExecuteTemplate(w, page, data) //nolint:errcheck // the client may be gone
}
