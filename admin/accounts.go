package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go402/go402/store"
)

// Page sizes of account listings.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

// accountPage is one page of an account listing; Next, if set, is the
// after parameter of the next page.
type accountPage struct {
	Accounts []store.Account `json:"accounts"`
	Next     string          `json:"next,omitempty"`
}

// pageSize parses the limit query parameter.
func pageSize(r *http.Request) (int, bool) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return defaultPageSize, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxPageSize {
		return 0, false
	}
	return n, true
}

// listAccounts serves GET /accounts?after=&limit=.
func (h *Handler) listAccounts(w http.ResponseWriter, r *http.Request) {
	limit, ok := pageSize(r)
	if !ok {
		writeProblem(w, http.StatusBadRequest, "bad_limit", "limit must be an integer from 1 to 1000.")
		return
	}
	accts, err := h.st.Accounts(r.Context(), r.URL.Query().Get("after"), limit)
	if err != nil {
		h.storeFailed(w, r, "accounts", err)
		return
	}
	p := accountPage{Accounts: accts}
	if p.Accounts == nil {
		p.Accounts = []store.Account{}
	}
	if len(accts) == limit {
		p.Next = accts[len(accts)-1].ID
	}
	writeJSON(w, http.StatusOK, p)
}

// createAccount serves POST /accounts: a new account, 409 if the ID is
// taken.
func (h *Handler) createAccount(w http.ResponseWriter, r *http.Request) {
	var a store.Account
	if !readJSON(w, r, &a) {
		return
	}
	if err := a.Validate(); err != nil {
		writeProblem(w, http.StatusUnprocessableEntity, "invalid_account", err.Error())
		return
	}
	if a.Balance < 0 {
		writeProblem(w, http.StatusUnprocessableEntity, "invalid_account", "balance must not be negative.")
		return
	}
	err := h.st.CreateAccount(r.Context(), a)
	switch {
	case errors.Is(err, store.ErrExists):
		writeProblem(w, http.StatusConflict, "account_exists", "An account with this ID exists.")
		return
	case err != nil:
		h.storeFailed(w, r, "create account", err)
		return
	}
	w.Header().Set("Location", "/accounts/"+a.ID)
	writeJSON(w, http.StatusCreated, a)
}

// getAccount serves GET /accounts/{id}.
func (h *Handler) getAccount(w http.ResponseWriter, r *http.Request) {
	a, err := h.st.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		h.storeFailed(w, r, "account", err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// accountPatch is the body of PATCH /accounts/{id}: each member present
// replaces the account's; rate_limit null removes the account's own rate,
// spend_cap null the spend cap. A spend cap keeps what was spent in the
// current period; thresholds keep the marks of those already set.
type accountPatch struct {
	Plan       *string            `json:"plan"`
	Status     *store.Status      `json:"status"`
	Features   *[]string          `json:"features"`
	PeriodEnd  *time.Time         `json:"period_end"`
	RateLimit  json.RawMessage    `json:"rate_limit"`
	Metadata   *map[string]string `json:"metadata"`
	SpendCap   json.RawMessage    `json:"spend_cap"`
	Thresholds *[]store.Threshold `json:"thresholds"`
}

// apply changes a as the patch says.
func (p *accountPatch) apply(a *store.Account) error {
	if p.Plan != nil {
		a.Plan = *p.Plan
	}
	if p.Status != nil {
		a.Status = *p.Status
	}
	if p.Features != nil {
		a.Features = *p.Features
	}
	if p.PeriodEnd != nil {
		a.PeriodEnd = *p.PeriodEnd
	}
	if p.Metadata != nil {
		a.Metadata = *p.Metadata
	}
	if len(p.RateLimit) > 0 {
		var rl *store.RateLimit
		if err := json.Unmarshal(p.RateLimit, &rl); err != nil {
			return err
		}
		a.RateLimit = rl
	}
	if err := p.applyCaps(a); err != nil {
		return err
	}
	return a.Validate()
}

// applyCaps changes a's spend cap and thresholds as the patch says.
func (p *accountPatch) applyCaps(a *store.Account) error {
	if len(p.SpendCap) > 0 {
		var c *store.SpendCap
		if err := json.Unmarshal(p.SpendCap, &c); err != nil {
			return err
		}
		if c != nil {
			c.Spent, c.Start = 0, time.Time{}
			if a.SpendCap != nil {
				c.Spent, c.Start = a.SpendCap.Spent, a.SpendCap.Start
			}
		}
		a.SpendCap = c
	}
	if p.Thresholds != nil {
		ts := *p.Thresholds
		for i := range ts {
			ts[i].Marked = time.Time{}
			for _, old := range a.Thresholds {
				if old.Kind == ts[i].Kind && old.Value == ts[i].Value {
					ts[i].Marked = old.Marked
				}
			}
		}
		a.Thresholds = ts
	}
	return nil
}

// errPatch marks an account the patch made invalid.
type errPatch struct{ err error }

func (e errPatch) Error() string { return e.err.Error() }

// updateAccount serves PATCH /accounts/{id}, atomically against spends.
func (h *Handler) updateAccount(w http.ResponseWriter, r *http.Request) {
	var p accountPatch
	if !readJSON(w, r, &p) {
		return
	}
	a, err := h.st.UpdateAccount(r.Context(), r.PathValue("id"), func(a *store.Account) error {
		if err := p.apply(a); err != nil {
			return errPatch{err}
		}
		return nil
	})
	if bad := (errPatch{}); errors.As(err, &bad) {
		writeProblem(w, http.StatusUnprocessableEntity, "invalid_account", bad.Error())
		return
	}
	if err != nil {
		h.storeFailed(w, r, "update account", err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}
