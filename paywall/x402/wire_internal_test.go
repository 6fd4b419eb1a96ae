package x402

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestDecodeHeader(t *testing.T) {
	js := []byte(`{"success":true,"transaction":"0xab?>","network":"eip155:8453"}`)
	for name, enc := range map[string]*base64.Encoding{
		"standard":          base64.StdEncoding,
		"standard unpadded": base64.RawStdEncoding,
		"url-safe":          base64.URLEncoding,
		"url-safe unpadded": base64.RawURLEncoding,
	} {
		var sr SettleResponse
		if _, err := decodeHeader(" "+enc.EncodeToString(js)+" ", maxHeaderBytes, &sr); err != nil || !sr.Success || sr.Transaction != "0xab?>" {
			t.Errorf("%s: %+v, %v", name, sr, err)
		}
	}
	for name, v := range map[string]string{
		"empty":     "",
		"too long":  strings.Repeat("A", maxHeaderBytes+4),
		"bad chars": "e30*",
		"mixed":     "ab-/",
		"not JSON":  base64.StdEncoding.EncodeToString([]byte("nope")),
		"trailing":  base64.StdEncoding.EncodeToString([]byte(`{} x`)),
	} {
		var sr SettleResponse
		if _, err := decodeHeader(v, maxHeaderBytes, &sr); !errors.Is(err, errMalformed) {
			t.Errorf("%s: err = %v, want errMalformed", name, err)
		}
	}
	if s := encodeHeader(SettleResponse{Success: true}); s != base64.StdEncoding.EncodeToString([]byte(`{"success":true,"transaction":"","network":""}`)) {
		t.Errorf("encodeHeader = %q", s)
	}
}

func FuzzDecodeHeader(f *testing.F) {
	valid := base64.StdEncoding.EncodeToString([]byte(`{"x402Version":2,"accepted":{"scheme":"exact"},"payload":{"a":1}}`))
	f.Add(valid)
	f.Add(strings.TrimRight(valid, "="))
	f.Add("e30=")
	f.Add("%%%")
	f.Fuzz(func(t *testing.T, v string) {
		var p PaymentPayload
		_, err := decodeHeader(v, maxHeaderBytes, &p)
		if err != nil && !errors.Is(err, errMalformed) {
			t.Fatalf("error %v does not wrap errMalformed", err)
		}
		if len(v) > maxHeaderBytes+64 && err == nil {
			t.Fatal("an over-long value was decoded")
		}
	})
}

func TestPaymentID(t *testing.T) {
	for ext, want := range map[string]string{
		``: "",
		`{"payment-identifier":{"info":{"id":"pay_0123456789abcdef"}}}`:                  "pay_0123456789abcdef",
		`{"payment-identifier":{"info":{"id":"short"}}}`:                                 "",
		`{"payment-identifier":{"info":{"id":"pay 0123456789abcdef"}}}`:                  "",
		`{"payment-identifier":{"info":{"id":` + `"` + strings.Repeat("a", 129) + `"}}}`: "",
		`[1]`: "",
	} {
		if got := paymentID([]byte(ext)); got != want {
			t.Errorf("paymentID(%s) = %q, want %q", ext, got, want)
		}
	}
}
