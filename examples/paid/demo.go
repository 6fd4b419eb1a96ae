package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go402/go402/paywall/x402"
)

// demoClient sends the demo's requests to the server at base and prints
// them with their answers to out.
type demoClient struct {
	ctx    context.Context
	base   string
	out    io.Writer
	client *http.Client
}

// send sends one request with the given headers (name, value, …).
func (c *demoClient) send(method, path, body string, header ...string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(c.ctx, method, c.base+path, strings.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// show prints a request line, the answer's status and the named headers,
// decoded.
func (c *demoClient) show(req string, resp *http.Response, headers ...string) {
	fmt.Fprintf(c.out, "> %s\n< %s\n", req, resp.Status)
	for _, h := range headers {
		if v := resp.Header.Get(h); v != "" {
			fmt.Fprintf(c.out, "< %s: %s\n", h, decoded(v))
		}
	}
}

// problem is what the demo prints of a problem body.
type problem struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// demo runs the documented exchange once against the server at base and
// prints each request and answer to out.
func demo(ctx context.Context, base string, out io.Writer) error {
	c := &demoClient{ctx: ctx, base: base, out: out, client: &http.Client{Timeout: 30 * time.Second}}
	fmt.Fprintln(out, "--- demo exchange ---")
	sig, err := c.challengeAndSign()
	if err != nil {
		return err
	}

	// 3. Pay: 200 with the receipt.
	resp, body, err := c.send("GET", "/joke", "", x402.HeaderPaymentSignature, sig)
	if err != nil {
		return err
	}
	c.show("GET /joke with PAYMENT-SIGNATURE", resp, x402.HeaderPaymentResponse)
	fmt.Fprintf(out, "< %s\n", body)

	// 4. A key holder spends credits instead.
	resp, body, err = c.send("GET", "/joke", "", "Authorization", "Bearer "+keyPaid)
	if err != nil {
		return err
	}
	c.show("GET /joke with Authorization: Bearer "+keyPaid, resp)
	fmt.Fprintf(out, "< %s\n", body)

	// 5. A key without credits gets 402, with the x402 challenge too.
	resp, body, err = c.send("GET", "/joke", "", "Authorization", "Bearer "+keyBroke)
	if err != nil {
		return err
	}
	var p problem
	_ = json.Unmarshal([]byte(body), &p)
	fmt.Fprintf(out, "> GET /joke with Authorization: Bearer %s\n< %s (code %s; PAYMENT-REQUIRED present: %v)\n",
		keyBroke, resp.Status, p.Code, resp.Header.Get(x402.HeaderPaymentRequired) != "")
	fmt.Fprintln(out, "--- end of demo exchange ---")
	return nil
}

// challengeAndSign runs the first two steps: a request without key or
// payment gets the challenge, which the (simulated) wallet signs. It
// returns the PAYMENT-SIGNATURE value.
func (c *demoClient) challengeAndSign() (string, error) {
	// 1. No key, no payment: 402 with the challenge.
	resp, body, err := c.send("GET", "/joke", "")
	if err != nil {
		return "", err
	}
	c.show("GET /joke", resp, x402.HeaderPaymentRequired)
	var p problem
	_ = json.Unmarshal([]byte(body), &p)
	fmt.Fprintf(c.out, "< {\"code\":%q, \"detail\":%q, …}\n\n", p.Code, p.Detail)

	// 2. The wallet signs a payment for the challenge (simulated).
	_, sig, err := c.send("POST", "/demo/sign", resp.Header.Get(x402.HeaderPaymentRequired))
	if err != nil {
		return "", err
	}
	fmt.Fprintf(c.out, "> POST /demo/sign (the wallet's job, simulated)\n< PAYMENT-SIGNATURE value: %s\n\n", decoded(sig))
	return sig, nil
}

// decoded shows a base64 JSON header value as compact JSON, shortening long
// strings (signatures, nonces) so that it fits a terminal.
func decoded(v string) string {
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return v
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return v
	}
	return buf.String()
}
