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

// FacilitatorClient calls a facilitator's REST API: POST /verify and POST
// /settle under a base URL, in x402 version 2 or, for a version 1 payment,
// version 1. It implements [Facilitator] and is safe for concurrent use.
//
// A call is bounded by its context ([Payments] gives each call the
// [Options.VerifyTimeout] or [Options.SettleTimeout]) and by the
// [http.Client]'s Timeout; a response body over 1 MiB is an error. Errors
// start with "x402: facilitator" and never contain the URL or the response
// body; a context deadline is reported as an error that [errors.Is] matches
// with [context.DeadlineExceeded].
type FacilitatorClient struct {
	base   string
	client *http.Client
}

// maxResponseBytes bounds a facilitator's response body.
const maxResponseBytes = 1 << 20

var _ Facilitator = (*FacilitatorClient)(nil)

// NewFacilitatorClient returns a client for the facilitator at baseURL, for
// example "https://x402.org/facilitator", that sends its requests with
// client, or [http.DefaultClient] if client is nil. Credentials go in
// client's Transport: a [http.RoundTripper] that sets the Authorization
// header on each request (a static token, or a JWT signed per request), as
// an OAuth2 client does. It does no I/O; it reports a URL that is not
// absolute http(s) as an error.
func NewFacilitatorClient(baseURL string, client *http.Client) (*FacilitatorClient, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("x402: facilitator URL must be an absolute http or https URL")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("x402: facilitator URL must not have a query or fragment")
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &FacilitatorClient{base: strings.TrimSuffix(baseURL, "/"), client: client}, nil
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

// call sends one request to endpoint and decodes the answer into out. Some
// facilitators answer a refused payment with a 4xx status and the usual
// body: such an answer, if it decodes into out and passes refusal, is not
// an error.
func (c *FacilitatorClient) call(ctx context.Context, endpoint string, body any, out any, refusal func() bool) error {
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
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("x402: facilitator /%s: read response: %w", endpoint, err)
	}
	if int64(len(data)) > maxResponseBytes {
		return fmt.Errorf("x402: facilitator /%s: response larger than %d bytes", endpoint, maxResponseBytes)
	}
	decodeErr := json.Unmarshal(data, out)
	switch {
	case resp.StatusCode/100 == 2 && decodeErr == nil:
		return nil
	case resp.StatusCode/100 == 4 && decodeErr == nil && refusal():
		return nil
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("x402: facilitator /%s: HTTP status %d", endpoint, resp.StatusCode)
	default:
		return fmt.Errorf("x402: facilitator /%s: response is not the expected JSON", endpoint)
	}
}

// newRequest builds the request of one call: a POST of body as JSON.
func (c *FacilitatorClient) newRequest(ctx context.Context, endpoint string, body any) (*http.Request, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("x402: facilitator /%s: encode request: %w", endpoint, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/"+endpoint, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("x402: facilitator /%s: build request failed", endpoint)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}
