package x402_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go402/go402/paywall/x402"
)

// chromium returns the path of a headless-capable Chromium, skipping the
// test when there is none — except in CI, which installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found; CI must install it (apt-get install chromium)")
	}
	t.Skip("chromium not found")
	return ""
}

// TestBrowserPage loads the 402 of a priced route in headless Chromium, as
// a person would, and checks that the rendered page states the price and
// what to do.
func TestBrowserPage(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t, envConfig{route: x402.Route{Price: "$0.001 (0.001 USDC)"}})

	// Chromium sends Accept: text/html,… and a Mozilla User-Agent; check
	// that this request shape gets HTML before launching it.
	resp, body := e.get("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0")
	wantStatus(t, resp, body, http.StatusPaymentRequired)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get(x402.HeaderPaymentRequired) == "" {
		t.Fatalf("browser request got %q, PAYMENT-REQUIRED %q", resp.Header.Get("Content-Type"), resp.Header.Get(x402.HeaderPaymentRequired))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(), "--dump-dom", e.srv.URL+"/weather")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	dom := string(out)
	for _, want := range []string{
		"402 Payment Required",
		"This request costs $0.001 (0.001 USDC).",
		"PAYMENT-SIGNATURE",
		"or with an API key",
		"payment_required",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q:\n%s", want, dom)
		}
	}
}
