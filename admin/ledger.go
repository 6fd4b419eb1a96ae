package admin

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go402/go402/store"
)

// ledgerPage is one page of an account's ledger; Next, if set, is the
// after parameter of the next page.
type ledgerPage struct {
	Entries []store.LedgerEntry `json:"entries"`
	Next    int64               `json:"next,omitempty"`
}

// ledgerQuery parses after, limit, from and to, or reports the problem.
func ledgerQuery(r *http.Request) (store.LedgerQuery, string) {
	var q store.LedgerQuery
	v := r.URL.Query()
	var err error
	if s := v.Get("after"); s != "" {
		if q.After, err = strconv.ParseInt(s, 10, 64); err != nil {
			return q, "after must be an integer sequence number."
		}
	}
	var ok bool
	if q.Limit, ok = pageSize(r); !ok {
		return q, "limit must be an integer from 1 to 1000."
	}
	for _, b := range []struct {
		name string
		t    *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := v.Get(b.name); s != "" {
			if *b.t, err = time.Parse(time.RFC3339, s); err != nil {
				return q, b.name + " must be an RFC 3339 time."
			}
		}
	}
	return q, ""
}

// listLedger serves GET /accounts/{id}/ledger, 404 if the store keeps no
// ledger.
func (h *Handler) listLedger(w http.ResponseWriter, r *http.Request) {
	if h.ledger == nil {
		writeProblem(w, http.StatusNotFound, "no_ledger", "This store keeps no ledger.")
		return
	}
	q, problem := ledgerQuery(r)
	if problem != "" {
		writeProblem(w, http.StatusBadRequest, "bad_query", problem)
		return
	}
	entries, err := h.ledger.Entries(r.Context(), r.PathValue("id"), q)
	if err != nil {
		h.storeFailed(w, r, "ledger", err)
		return
	}
	p := ledgerPage{Entries: entries}
	if p.Entries == nil {
		p.Entries = []store.LedgerEntry{}
	}
	if len(entries) == q.Limit {
		p.Next = entries[len(entries)-1].Seq
	}
	writeJSON(w, http.StatusOK, p)
}
