package admin

import (
	"net/http"
	"strings"
	"time"

	"github.com/go402/go402/store"
)

// defaultKeyPrefix is the label of keys issued without one.
const defaultKeyPrefix = "sk_live_"

// maxOverlap bounds a rotation's overlap period.
const maxOverlap = 30 * 24 * time.Hour

// issuedKey is the answer to issuing or rotating a key: the raw key, shown
// this once, beside the key as the store keeps it.
type issuedKey struct {
	Raw string `json:"key"` // the raw key: never shown again
	store.Key
}

// keyList is an account's keys, display prefixes only.
type keyList struct {
	Keys []store.Key `json:"keys"`
}

// listKeys serves GET /accounts/{id}/keys, with last uses not yet flushed
// merged in.
func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := h.st.Keys(r.Context(), r.PathValue("id"))
	if err != nil {
		h.storeFailed(w, r, "keys", err)
		return
	}
	if keys == nil {
		keys = []store.Key{}
	}
	h.mergePending(keys)
	writeJSON(w, http.StatusOK, keyList{keys})
}

// mergePending sets the LastUsedAt of keys to the uses the Recorder noted
// and has not flushed yet, where later.
func (h *Handler) mergePending(keys []store.Key) {
	rec := h.opts.Recorder
	if rec == nil {
		return
	}
	for i := range keys {
		if t, ok := rec.pending(keys[i].Digest); ok && t.After(keys[i].LastUsedAt) {
			keys[i].LastUsedAt = t
		}
	}
}

// issueRequest is the body of POST /accounts/{id}/keys.
type issueRequest struct {
	Prefix    string    `json:"prefix"`     // the key's label; default "sk_live_"
	ExpiresAt time.Time `json:"expires_at"` // zero: never
}

// issueKey serves POST /accounts/{id}/keys.
func (h *Handler) issueKey(w http.ResponseWriter, r *http.Request) {
	var req issueRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Prefix == "" {
		req.Prefix = defaultKeyPrefix
	}
	if _, err := store.GenerateKey(req.Prefix); err != nil {
		writeProblem(w, http.StatusUnprocessableEntity, "invalid_prefix", err.Error())
		return
	}
	h.issue(w, r, r.PathValue("id"), req.Prefix, req.ExpiresAt)
}

// issue creates a key of accountID and answers 201 with it.
func (h *Handler) issue(w http.ResponseWriter, r *http.Request, accountID, prefix string, expires time.Time) {
	raw, k, err := h.st.CreateKey(r.Context(), accountID, prefix)
	if err != nil {
		h.storeFailed(w, r, "create key", err)
		return
	}
	if !expires.IsZero() {
		k.ExpiresAt = expires
		if err := h.st.PutKey(r.Context(), k); err != nil {
			h.storeFailed(w, r, "put key", err)
			return
		}
	}
	writeJSON(w, http.StatusCreated, issuedKey{Raw: raw, Key: k})
}

// findKey returns the key {key} (its digest in hexadecimal) of account
// {id}, as the store lists it now, or answers the request and returns
// false.
func (h *Handler) findKey(w http.ResponseWriter, r *http.Request) (store.Key, bool) {
	var d store.Digest
	if err := d.UnmarshalText([]byte(r.PathValue("key"))); err != nil {
		writeProblem(w, http.StatusBadRequest, "bad_key_id", "A key is named by its digest: 64 hexadecimal digits.")
		return store.Key{}, false
	}
	keys, err := h.st.Keys(r.Context(), r.PathValue("id"))
	if err != nil {
		h.storeFailed(w, r, "keys", err)
		return store.Key{}, false
	}
	for _, k := range keys {
		if k.Digest == d {
			return k, true
		}
	}
	writeProblem(w, http.StatusNotFound, "not_found", "The account has no key with this digest.")
	return store.Key{}, false
}

// revokeKey serves POST /accounts/{id}/keys/{key}/revoke: the key stops
// authenticating at once (within the store's documented bound on other
// replicas).
func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request) {
	k, ok := h.findKey(w, r)
	if !ok {
		return
	}
	if err := h.st.RevokeKey(r.Context(), k.Digest); err != nil {
		h.storeFailed(w, r, "revoke key", err)
		return
	}
	k.Revoked = true
	writeJSON(w, http.StatusOK, k)
}

// rotateRequest is the body of POST /accounts/{id}/keys/{key}/rotate.
type rotateRequest struct {
	// OverlapSeconds is how long the old key keeps working beside the
	// new one; 0 revokes it at once.
	OverlapSeconds int64 `json:"overlap_seconds"`
}

// rotation is the answer to a rotation: the new key, shown this once, and
// the old one as it now is.
type rotation struct {
	New issuedKey `json:"new"`
	Old store.Key `json:"old"`
}

// rotateKey serves POST /accounts/{id}/keys/{key}/rotate: a new key with
// the old one's label, and the old one expiring after the overlap (never
// later than it already did).
func (h *Handler) rotateKey(w http.ResponseWriter, r *http.Request) {
	var req rotateRequest
	if !readJSON(w, r, &req) {
		return
	}
	overlap := time.Duration(req.OverlapSeconds) * time.Second
	if req.OverlapSeconds < 0 || overlap > maxOverlap {
		writeProblem(w, http.StatusUnprocessableEntity, "bad_overlap", "overlap_seconds must be from 0 to 2592000 (30 days).")
		return
	}
	old, ok := h.findKey(w, r)
	if !ok {
		return
	}
	if old.Revoked {
		writeProblem(w, http.StatusConflict, "key_revoked", "A revoked key cannot be rotated; issue a new one.")
		return
	}
	raw, k, err := h.st.CreateKey(r.Context(), old.AccountID, label(old.Prefix))
	if err != nil {
		h.storeFailed(w, r, "create key", err)
		return
	}
	if err := h.retire(r, &old, overlap); err != nil {
		h.storeFailed(w, r, "retire key", err)
		return
	}
	writeJSON(w, http.StatusCreated, rotation{New: issuedKey{Raw: raw, Key: k}, Old: old})
}

// retire makes old stop authenticating after overlap: revoked at once if
// overlap is zero, else expiring then.
func (h *Handler) retire(r *http.Request, old *store.Key, overlap time.Duration) error {
	if overlap == 0 {
		old.Revoked = true
		return h.st.RevokeKey(r.Context(), old.Digest)
	}
	until := h.opts.Clock().Add(overlap)
	if !old.ExpiresAt.IsZero() && old.ExpiresAt.Before(until) {
		return nil
	}
	old.ExpiresAt = until
	return h.st.PutKey(r.Context(), *old)
}

// label returns the label of a display prefix, such as "sk_live_" of
// "sk_live_ab12": what a rotated key's successor starts with.
func label(prefix string) string {
	if i := strings.LastIndexByte(prefix, '_'); i >= 0 {
		return prefix[:i+1]
	}
	return defaultKeyPrefix
}
