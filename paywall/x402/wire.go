package x402

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Header names of the x402 HTTP transport. Go canonicalises them
// ("Payment-Required") when they are set; the comparison is
// case-insensitive on the wire.
const (
	// HeaderPaymentRequired carries the challenge of a 402:
	// base64(JSON [PaymentRequired]), x402 version 2.
	HeaderPaymentRequired = "PAYMENT-REQUIRED"
	// HeaderPaymentSignature carries the client's payment:
	// base64(JSON [PaymentPayload]), x402 version 2.
	HeaderPaymentSignature = "PAYMENT-SIGNATURE"
	// HeaderPaymentResponse carries the settlement result:
	// base64(JSON [SettleResponse]), x402 version 2.
	HeaderPaymentResponse = "PAYMENT-RESPONSE"
)

// PaymentRequired is the challenge of x402 version 2, sent base64-encoded in
// the PAYMENT-REQUIRED header of a 402.
type PaymentRequired struct {
	// X402Version is 2.
	X402Version int `json:"x402Version"`
	// Error says why the previous payment, if any, was not accepted.
	Error string `json:"error,omitempty"`
	// Resource describes what is being paid for.
	Resource Resource `json:"resource"`
	// Accepts lists the ways the client may pay; it picks one.
	Accepts []PaymentRequirements `json:"accepts"`
	// Extensions holds protocol extensions, keyed by name.
	Extensions map[string]any `json:"extensions,omitempty"`
}

// Resource describes the paid resource of a [PaymentRequired].
type Resource struct {
	// URL is the resource's absolute URL. Required.
	URL string `json:"url"`
	// Description says what the resource is, for people and agents.
	Description string `json:"description,omitempty"`
	// MimeType is the media type of the resource's response.
	MimeType string `json:"mimeType,omitempty"`
}

// PaymentRequirements is one way to pay (x402 version 2): an amount of an
// asset, paid to PayTo on a network, with a payment scheme.
type PaymentRequirements struct {
	// Scheme is the payment scheme, for example "exact".
	Scheme string `json:"scheme"`
	// Network is a CAIP-2 chain id, for example "eip155:8453" (Base).
	Network string `json:"network"`
	// Amount is the price in the asset's atomic units, as a decimal
	// string (for USDC, with 6 decimals, "1000" is 0.001 USDC).
	Amount string `json:"amount"`
	// Asset identifies the token, for example its contract address.
	Asset string `json:"asset"`
	// PayTo is the address that receives the payment.
	PayTo string `json:"payTo"`
	// MaxTimeoutSeconds is how long the payment may take to complete.
	MaxTimeoutSeconds int `json:"maxTimeoutSeconds"`
	// Extra holds scheme-specific data, for EVM "exact" the token's EIP-712
	// domain: {"name": "USDC", "version": "2"}.
	Extra map[string]any `json:"extra,omitempty"`
}

// PaymentPayload is the client's payment in x402 version 2, sent
// base64-encoded in the PAYMENT-SIGNATURE header.
type PaymentPayload struct {
	// X402Version is 2.
	X402Version int `json:"x402Version"`
	// Accepted is the requirement the client chose from the challenge.
	Accepted PaymentRequirements `json:"accepted"`
	// Payload is the scheme-specific proof of payment (for EVM "exact", a
	// signature and an EIP-3009 authorization), passed to the facilitator
	// as is.
	Payload json.RawMessage `json:"payload"`
	// Resource echoes the challenge's resource, if the client sends it.
	Resource *Resource `json:"resource,omitempty"`
	// Extensions holds protocol extensions, passed on as is.
	Extensions json.RawMessage `json:"extensions,omitempty"`
}

// SettleResponse is a facilitator's answer to a settlement, and what the
// server sends back base64-encoded in PAYMENT-RESPONSE (version 2) or
// X-PAYMENT-RESPONSE (version 1): the facilitator's answer as it came,
// whether the settlement succeeded or failed.
type SettleResponse struct {
	// Success reports whether the payment was settled.
	Success bool `json:"success"`
	// ErrorReason says why it was not, for example "insufficient_funds".
	ErrorReason string `json:"errorReason,omitempty"`
	// ErrorMessage is the facilitator's human-readable account of a
	// failure. The server forwards at most 512 bytes of it.
	ErrorMessage string `json:"errorMessage,omitempty"`
	// Payer is the paying address, when known.
	Payer string `json:"payer,omitempty"`
	// Transaction is the settlement transaction's hash; usually empty on
	// failure, but a facilitator may name a transaction that failed.
	Transaction string `json:"transaction"`
	// Network is the network the payment was settled on.
	Network string `json:"network"`
	// Amount is the settled amount in atomic units, when reported.
	Amount string `json:"amount,omitempty"`
	// Extensions holds protocol extension data, keyed by name.
	Extensions map[string]any `json:"extensions,omitempty"`
	// Extra holds scheme-specific data some facilitators add.
	Extra map[string]any `json:"extra,omitempty"`
}

// VerifyResponse is a facilitator's answer to a verification.
type VerifyResponse struct {
	// IsValid reports whether the payment would settle.
	IsValid bool `json:"isValid"`
	// InvalidReason says why it would not, for example
	// "insufficient_funds".
	InvalidReason string `json:"invalidReason,omitempty"`
	// Payer is the paying address, when known.
	Payer string `json:"payer,omitempty"`
}

// maxHeaderBytes is the longest payment header accepted: a longer one is
// refused, with a fresh challenge, before it is decoded. Real payments take
// a few KiB at most.
const maxHeaderBytes = 16 << 10

// errMalformed reports a payment header that is not base64-encoded JSON of
// the expected shape, or is too long.
var errMalformed = errors.New("x402: malformed payment header")

// encodeHeader returns v as a header value: its JSON encoding in standard
// base64 with padding, as the x402 HTTP transport specifies. The values
// encoded here are plain data and always encode.
func encodeHeader(v any) string {
	b, _ := json.Marshal(v)
	return base64.StdEncoding.EncodeToString(b)
}

// decodeHeader decodes a payment header into v, refusing values longer
// than limit before decoding anything, and returns the decoded JSON. It is
// lenient about the base64 dialect, because clients in the field differ:
// padding may be missing, and the URL-safe alphabet ('-', '_') is accepted
// too. Surrounding white space and unknown JSON members are ignored. Every
// failure wraps errMalformed.
func decodeHeader(value string, limit int, v any) ([]byte, error) {
	value = strings.TrimSpace(value)
	if len(value) > limit {
		return nil, fmt.Errorf("%w: longer than %d bytes", errMalformed, limit)
	}
	if value == "" {
		return nil, fmt.Errorf("%w: empty", errMalformed)
	}
	raw, err := decodeBase64(value)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", errMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return nil, fmt.Errorf("%w: not JSON of the expected shape", errMalformed)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after JSON", errMalformed)
	}
	return raw, nil
}

func decodeBase64(s string) ([]byte, error) {
	enc := base64.StdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	if !strings.HasSuffix(s, "=") {
		enc = enc.WithPadding(base64.NoPadding)
	}
	return enc.Strict().DecodeString(s)
}
