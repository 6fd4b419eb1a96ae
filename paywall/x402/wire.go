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
	// HeaderPaymentV1 carries the client's payment in x402 version 1:
	// base64(JSON [PaymentPayloadV1]).
	HeaderPaymentV1 = "X-PAYMENT"
	// HeaderPaymentResponseV1 carries the settlement result in x402
	// version 1: base64(JSON [SettleResponse]).
	HeaderPaymentResponseV1 = "X-PAYMENT-RESPONSE"
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
// X-PAYMENT-RESPONSE (version 1).
type SettleResponse struct {
	// Success reports whether the payment was settled.
	Success bool `json:"success"`
	// ErrorReason says why it was not, for example "insufficient_funds".
	ErrorReason string `json:"errorReason,omitempty"`
	// Payer is the paying address, when known.
	Payer string `json:"payer,omitempty"`
	// Transaction is the settlement transaction's hash; empty on failure.
	Transaction string `json:"transaction"`
	// Network is the network the payment was settled on.
	Network string `json:"network"`
	// Amount is the settled amount in atomic units, when reported.
	Amount string `json:"amount,omitempty"`
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

// PaymentRequiredV1 is the challenge of x402 version 1, sent as the JSON body
// of a 402.
type PaymentRequiredV1 struct {
	// X402Version is 1.
	X402Version int `json:"x402Version"`
	// Error says why payment is required or why the last one failed.
	Error string `json:"error"`
	// Accepts lists the ways the client may pay.
	Accepts []PaymentRequirementsV1 `json:"accepts"`
}

// PaymentRequirementsV1 is one way to pay in x402 version 1. Networks have
// names ("base", "base-sepolia") instead of CAIP-2 ids, and the resource is
// described in every requirement. MaxAmountRequired is the version 2
// Amount; the other fields mean what they mean there and in [Resource].
type PaymentRequirementsV1 struct {
	Scheme            string         `json:"scheme"`
	Network           string         `json:"network"`
	MaxAmountRequired string         `json:"maxAmountRequired"`
	Asset             string         `json:"asset"`
	PayTo             string         `json:"payTo"`
	Resource          string         `json:"resource"`
	Description       string         `json:"description"`
	MimeType          string         `json:"mimeType,omitempty"`
	OutputSchema      map[string]any `json:"outputSchema,omitempty"`
	MaxTimeoutSeconds int            `json:"maxTimeoutSeconds"`
	Extra             map[string]any `json:"extra,omitempty"`
}

// PaymentPayloadV1 is the client's payment in x402 version 1, sent
// base64-encoded in the X-PAYMENT header: the chosen scheme and network and
// the scheme-specific payload.
type PaymentPayloadV1 struct {
	X402Version int             `json:"x402Version"`
	Scheme      string          `json:"scheme"`
	Network     string          `json:"network"`
	Payload     json.RawMessage `json:"payload"`
}

// MaxHeaderBytes is the default limit on the size of an encoded payment
// header; see [Options.MaxHeaderBytes] and [DecodeHeader].
const MaxHeaderBytes = 16 << 10

// ErrMalformed reports a payment header that is not base64-encoded JSON of
// the expected shape, or is too long.
var ErrMalformed = errors.New("x402: malformed payment header")

// EncodeHeader returns v as a header value: its JSON encoding in standard
// base64 with padding, as the x402 HTTP transport specifies.
func EncodeHeader(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("x402: encode header: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodeHeader decodes a header value made by [EncodeHeader] into v. It
// refuses values longer than [MaxHeaderBytes] before decoding anything.
//
// It is lenient about the base64 dialect, because clients in the field
// differ: padding may be missing, and the URL-safe alphabet ('-', '_') is
// accepted too. Surrounding white space is ignored. Unknown JSON members are
// ignored. Every failure wraps [ErrMalformed].
func DecodeHeader(value string, v any) error {
	_, err := decodeHeader(value, MaxHeaderBytes, v)
	return err
}

// decodeHeader is DecodeHeader with a size limit; it also returns the
// decoded JSON.
func decodeHeader(value string, limit int, v any) ([]byte, error) {
	value = strings.TrimSpace(value)
	if len(value) > limit {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, limit)
	}
	if value == "" {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	raw, err := decodeBase64(value)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return nil, fmt.Errorf("%w: not JSON of the expected shape", ErrMalformed)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after JSON", ErrMalformed)
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
