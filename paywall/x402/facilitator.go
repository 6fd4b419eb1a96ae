package x402

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Facilitator verifies and settles payments, usually a service reached over
// HTTP ([FacilitatorClient]). Implementations must be safe for concurrent
// use.
//
// A payment the facilitator refuses is not an error: Verify reports it with
// IsValid false and Settle with Success false, each with a reason. An error
// means the facilitator could not be asked or gave no usable answer; the
// middleware then answers 503 (timeout) or 502. For Verify nothing was
// charged; for Settle the outcome is unknown, and the same payment is
// settled again when the client sends it again ([CodeSettlementUnknown]).
//
// payload.X402Version is 2, or 1 for a version 1 payment ([Options.V1]):
// req then names its network the version 1 way ("base-sepolia"),
// payload.Accepted equals req, and payload.Resource describes the
// resource. The requirements passed in are the route's own;
// implementations must not modify them (their Extra map is shared).
type Facilitator interface {
	// Verify checks payload against req without moving money.
	Verify(ctx context.Context, payload PaymentPayload, req PaymentRequirements) (VerifyResponse, error)
	// Settle moves the money.
	Settle(ctx context.Context, payload PaymentPayload, req PaymentRequirements) (SettleResponse, error)
}

// SupportedResponse is the answer of a facilitator's GET /supported: the
// payment kinds it handles.
type SupportedResponse struct {
	// Kinds are the payment kinds the facilitator verifies and settles.
	Kinds []SupportedKind `json:"kinds"`
	// Extensions are the identifiers of the x402 extensions it supports.
	Extensions []string `json:"extensions,omitempty"`
	// Signers are the addresses the facilitator signs or pays gas with, by
	// CAIP-2 network or pattern ("eip155:8453", "eip155:*").
	Signers map[string][]string `json:"signers,omitempty"`
}

// SupportedKind is one (version, scheme, network) a facilitator handles.
type SupportedKind struct {
	// X402Version is the protocol version of the kind, 1 or 2.
	X402Version int `json:"x402Version"`
	// Scheme is the payment scheme, such as "exact".
	Scheme string `json:"scheme"`
	// Network is the network: a CAIP-2 id in version 2 ("eip155:8453"),
	// a name in version 1 ("base").
	Network string `json:"network"`
	// Extra holds the scheme's details for this network, such as the
	// token's EIP-712 name and version; nil if none.
	Extra map[string]any `json:"extra,omitempty"`
}

// ClientOptions configures a [FacilitatorClient]. A nil *ClientOptions means
// all defaults.
type ClientOptions struct {
	// HTTPClient sends the requests. Default [http.DefaultClient].
	HTTPClient *http.Client

	// Timeout bounds each call, on top of the caller's context. Default 30
	// seconds; negative means no limit of its own.
	Timeout time.Duration

	// Header is added to every request, for example
	// {"Authorization": {"Bearer <token>"}}. It is never part of an error.
	Header http.Header

	// Authorize, if set, is called on every request before it is sent, to
	// add credentials that change per request (a signed JWT, say). An error
	// aborts the call.
	Authorize func(*http.Request) error

	// MaxResponseBytes limits the size of a response body. Default 1 MiB.
	MaxResponseBytes int64
}

// FacilitatorClient calls a facilitator's REST API: POST /verify, POST
// /settle and GET /supported under a base URL, in x402 version 2 or, for a
// version 1 payment, version 1. It implements [Facilitator] and is safe for
// concurrent use.
//
// Errors it returns start with "x402: facilitator" and never contain the
// URL, the configured headers or the response body. A context deadline (the
// caller's or [ClientOptions.Timeout]) is reported as an error that
// [errors.Is] matches with [context.DeadlineExceeded].
type FacilitatorClient struct {
	base   string
	client *http.Client
	opts   ClientOptions
}

var _ Facilitator = (*FacilitatorClient)(nil)

// NewFacilitatorClient returns a client for the facilitator at baseURL, for
// example "https://x402.org/facilitator". It does no I/O; it reports a URL
// that is not absolute http(s), or an invalid option, as an error.
func NewFacilitatorClient(baseURL string, opts *ClientOptions) (*FacilitatorClient, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("x402: facilitator URL must be an absolute http or https URL")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("x402: facilitator URL must not have a query or fragment")
	}
	c := &FacilitatorClient{base: strings.TrimSuffix(baseURL, "/")}
	if opts != nil {
		c.opts = *opts
	}
	if c.opts.MaxResponseBytes < 0 {
		return nil, fmt.Errorf("x402: ClientOptions.MaxResponseBytes must be >= 0, got %d", c.opts.MaxResponseBytes)
	}
	if c.opts.Timeout == 0 {
		c.opts.Timeout = 30 * time.Second
	}
	if c.opts.MaxResponseBytes == 0 {
		c.opts.MaxResponseBytes = 1 << 20
	}
	c.client = c.opts.HTTPClient
	if c.client == nil {
		c.client = http.DefaultClient
	}
	c.opts.Header = c.opts.Header.Clone()
	return c, nil
}

// facilitatorRequest is the body of POST /verify and POST /settle.
type facilitatorRequest struct {
	X402Version         int `json:"x402Version"`
	PaymentPayload      any `json:"paymentPayload"`
	PaymentRequirements any `json:"paymentRequirements"`
}

// requestOf returns the body of a /verify or /settle call, in the version
// of the payment.
func requestOf(payload PaymentPayload, req PaymentRequirements) facilitatorRequest {
	if payload.X402Version == 1 {
		p, q := wireV1(payload, req)
		return facilitatorRequest{1, p, q}
	}
	return facilitatorRequest{2, payload, req}
}

// Verify calls POST /verify.
func (c *FacilitatorClient) Verify(ctx context.Context, payload PaymentPayload, req PaymentRequirements) (VerifyResponse, error) {
	var v VerifyResponse
	err := c.call(ctx, "verify", requestOf(payload, req), &v, func() bool { return !v.IsValid && v.InvalidReason != "" })
	return v, err
}

// Settle calls POST /settle.
func (c *FacilitatorClient) Settle(ctx context.Context, payload PaymentPayload, req PaymentRequirements) (SettleResponse, error) {
	var s SettleResponse
	err := c.call(ctx, "settle", requestOf(payload, req), &s, func() bool { return !s.Success && s.ErrorReason != "" })
	return s, err
}

// Supported calls GET /supported.
func (c *FacilitatorClient) Supported(ctx context.Context) (SupportedResponse, error) {
	var s SupportedResponse
	err := c.call(ctx, "supported", nil, &s, nil)
	return s, err
}

// call sends one request to endpoint and decodes the answer into out. Some
// facilitators answer a refused payment with a 4xx status and the usual
// body: such an answer, if it decodes into out and passes refusal, is not
// an error.
func (c *FacilitatorClient) call(ctx context.Context, endpoint string, body any, out any, refusal func() bool) error {
	if c.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	req, err := c.newRequest(ctx, endpoint, body)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		// *url.Error would quote the URL, which may carry a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("x402: facilitator /%s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("x402: facilitator /%s: read response: %w", endpoint, err)
	}
	if int64(len(data)) > c.opts.MaxResponseBytes {
		return fmt.Errorf("x402: facilitator /%s: response larger than %d bytes", endpoint, c.opts.MaxResponseBytes)
	}
	decodeErr := json.Unmarshal(data, out)
	switch {
	case resp.StatusCode/100 == 2 && decodeErr == nil:
		return nil
	case resp.StatusCode/100 == 4 && decodeErr == nil && refusal != nil && refusal():
		return nil
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("x402: facilitator /%s: HTTP status %d", endpoint, resp.StatusCode)
	default:
		return fmt.Errorf("x402: facilitator /%s: response is not the expected JSON", endpoint)
	}
}

// newRequest builds the request of one call: a GET if body is nil, else a
// POST of body as JSON, with the configured headers and authorization.
func (c *FacilitatorClient) newRequest(ctx context.Context, endpoint string, body any) (*http.Request, error) {
	method := http.MethodGet
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("x402: facilitator /%s: encode request: %w", endpoint, err)
		}
		method, rd = http.MethodPost, bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/"+endpoint, rd)
	if err != nil {
		return nil, fmt.Errorf("x402: facilitator /%s: build request failed", endpoint)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.opts.Header {
		req.Header[k] = v
	}
	if c.opts.Authorize != nil {
		if err := c.opts.Authorize(req); err != nil {
			return nil, fmt.Errorf("x402: facilitator /%s: authorize: %w", endpoint, err)
		}
	}
	return req, nil
}
