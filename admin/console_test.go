package admin_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// browse runs headless Chromium on u with the extra flags and returns its
// standard output.
func browse(t *testing.T, bin, u string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir()}, flags...)
	out, err := exec.CommandContext(ctx, bin, append(args, u)...).Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	return string(out)
}

// TestConsoleInChromium renders the console's pages in headless Chromium,
// behind a proxy that adds the admin credentials as an operator's
// authenticating proxy would, and checks what they show — and that no raw
// key is on them. GO402_UPDATE_SCREENSHOT=1 rewrites testdata/console.png.
func TestConsoleInChromium(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t)
	e.account("acct_alpha", 3)
	e.account("acct_beta", 250)
	live, revoked := e.issue("acct_alpha"), e.issue("acct_alpha")
	e.do("POST", "/accounts/acct_alpha/keys/"+revoked.Digest.String()+"/revoke", nil, nil)
	for range 4 { // three paid, the fourth refused: insufficient_credits
		e.paid(live.Key)
	}
	e.paid(revoked.Key)

	target, _ := url.Parse(e.admin.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	director := proxy.Director
	proxy.Director = func(r *http.Request) {
		director(r)
		r.Header.Set("Authorization", "Bearer "+adminToken)
	}
	srv := httptest.NewServer(proxy)
	defer srv.Close()

	home := browse(t, bin, srv.URL+"/console", "--dump-dom")
	for _, want := range []string{"acct_alpha", "acct_beta", "250", "pro", "active", "insufficient_credits"} {
		if !strings.Contains(home, want) {
			t.Errorf("console home lacks %q:\n%s", want, home)
		}
	}
	page := browse(t, bin, srv.URL+"/console/accounts/acct_alpha", "--dump-dom")
	for _, want := range []string{"Account acct_alpha", live.Prefix, revoked.Prefix, "revoked", "insufficient_credits", "402"} {
		if !strings.Contains(page, want) {
			t.Errorf("account page lacks %q:\n%s", want, page)
		}
	}
	for _, raw := range []string{live.Key, revoked.Key} {
		if strings.Contains(home+page, raw) {
			t.Fatal("a console page shows a raw key")
		}
	}
	shot := filepath.Join(t.TempDir(), "console.png")
	browse(t, bin, srv.URL+"/console/accounts/acct_alpha", "--window-size=1100,620", "--hide-scrollbars", "--screenshot="+shot)
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot: %v", err)
	}
	if os.Getenv("GO402_UPDATE_SCREENSHOT") != "" {
		if err := os.WriteFile("testdata/console.png", png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
