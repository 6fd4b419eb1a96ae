package admin

import (
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/go402/go402/store"
)

// creditRequest is the body of POST /accounts/{id}/credits.
type creditRequest struct {
	// Kind is "topup" (Amount > 0) or "adjust" (Amount ≠ 0, which may
	// take credits away, never below zero).
	Kind        string `json:"kind"`
	Amount      int64  `json:"amount"`
	OperationID string `json:"operation_id"` // required; a retry with it moves nothing
	Reason      string `json:"reason,omitempty"`
}

// creditResult is the answer to a credit movement.
type creditResult struct {
	AccountID   string `json:"account_id"`
	Kind        string `json:"kind"`
	Amount      int64  `json:"amount"`
	Balance     int64  `json:"balance"` // after the movement
	OperationID string `json:"operation_id"`
	Replayed    bool   `json:"replayed,omitempty"` // a retry: nothing moved
}

// maxOperationID bounds an operation ID's length.
const maxOperationID = 255

// check reports the first problem of the request, or "".
func (c *creditRequest) check() string {
	switch {
	case c.OperationID == "" || len(c.OperationID) > maxOperationID:
		return "operation_id is required, at most 255 bytes."
	case c.Kind == "topup" && c.Amount <= 0:
		return "A top-up's amount must be positive."
	case c.Kind == "adjust" && c.Amount == 0:
		return "An adjustment's amount must not be zero."
	case c.Kind != "topup" && c.Kind != "adjust":
		return `kind must be "topup" or "adjust".`
	}
	return ""
}

// errOverdrawn is an adjustment that would take the balance below zero.
var errOverdrawn = errors.New("admin: adjustment below zero")

// moveCredits serves POST /accounts/{id}/credits. The operation ID goes to
// the store with [store.WithOperation]; a store without a ledger has
// retries answered from the handler's memory of recent operations.
func (h *Handler) moveCredits(w http.ResponseWriter, r *http.Request) {
	var req creditRequest
	if !readJSON(w, r, &req) {
		return
	}
	if p := req.check(); p != "" {
		writeProblem(w, http.StatusUnprocessableEntity, "invalid_credit", p)
		return
	}
	id := r.PathValue("id")
	if h.ledger == nil {
		prev, state := h.ops.begin(req.OperationID, id, req)
		switch state {
		case opDone:
			prev.Replayed = true
			writeJSON(w, http.StatusOK, prev)
			return
		case opBusy:
			writeProblem(w, http.StatusConflict, "operation_in_progress", "This operation is being applied; retry shortly.")
			return
		case opMismatch:
			writeProblem(w, http.StatusUnprocessableEntity, "operation_reused",
				"This operation ID was used for another account, kind or amount.")
			return
		}
	}
	res, err := h.credit(r, id, req)
	if h.ledger == nil {
		h.ops.end(req.OperationID, res, err == nil)
	}
	switch {
	case errors.Is(err, errOverdrawn):
		writeProblem(w, http.StatusUnprocessableEntity, "insufficient_balance", "The adjustment would take the balance below zero.")
	case err != nil:
		h.storeFailed(w, r, "credit", err)
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// credit moves the credits of req on account id.
func (h *Handler) credit(r *http.Request, id string, req creditRequest) (creditResult, error) {
	ctx := store.WithOperation(r.Context(), store.Operation{ID: req.OperationID})
	res := creditResult{AccountID: id, Kind: req.Kind, Amount: req.Amount, OperationID: req.OperationID}
	if req.Kind == "topup" {
		b, err := h.st.TopUp(ctx, id, req.Amount)
		res.Balance = b
		return res, err
	}
	a, err := h.st.UpdateAccount(ctx, id, func(a *store.Account) error {
		if req.Amount < 0 && a.Balance < -req.Amount {
			return errOverdrawn
		}
		if req.Amount > 0 && a.Balance > (1<<63-1)-req.Amount {
			return store.ErrInvalidAmount
		}
		a.Balance += req.Amount
		return nil
	})
	res.Balance = a.Balance
	return res, err
}

// States of an operation in the handler's memory.
const (
	opNew      = iota // not seen: go ahead
	opDone            // applied: answer with what it returned
	opBusy            // being applied by another request
	opMismatch        // seen with other parameters
)

// operation is a remembered credit operation.
type operation struct {
	params string // account, kind and amount
	done   bool
	res    creditResult
}

// operations remembers the most recent credit operations, at most max of
// them; past that the oldest finished one is forgotten, so a retry older
// than the last max operations would move credits again. It is safe for
// concurrent use.
type operations struct {
	mu    sync.Mutex
	max   int
	byID  map[string]*operation
	order []string // IDs, oldest first
}

func newOperations(max int) *operations {
	return &operations{max: max, byID: make(map[string]*operation)}
}

// begin looks the operation up and, if new, marks it in flight.
func (o *operations) begin(id, accountID string, req creditRequest) (creditResult, int) {
	params := accountID + "\x00" + req.Kind + "\x00" + strconv.FormatInt(req.Amount, 10)
	o.mu.Lock()
	defer o.mu.Unlock()
	if op, ok := o.byID[id]; ok {
		switch {
		case op.params != params:
			return creditResult{}, opMismatch
		case !op.done:
			return creditResult{}, opBusy
		}
		return op.res, opDone
	}
	for len(o.order) >= o.max && o.forgetOldest() {
	}
	o.byID[id] = &operation{params: params}
	o.order = append(o.order, id)
	return creditResult{}, opNew
}

// forgetOldest drops the oldest finished operation, if any.
func (o *operations) forgetOldest() bool {
	for i, id := range o.order {
		if o.byID[id].done {
			delete(o.byID, id)
			o.order = append(o.order[:i:i], o.order[i+1:]...)
			return true
		}
	}
	return false
}

// end records the outcome of an operation begun: kept if it succeeded,
// forgotten (so that a retry applies it) if it failed.
func (o *operations) end(id string, res creditResult, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !ok {
		delete(o.byID, id)
		for i, v := range o.order {
			if v == id {
				o.order = append(o.order[:i:i], o.order[i+1:]...)
				break
			}
		}
		return
	}
	op := o.byID[id]
	op.done, op.res = true, res
}
