package stripemock

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The Mock records the meter events and cancellations that the server
// behind it accepted, and no others: not those it refused, nor those that
// Outage answered or Before dropped.
func TestMockRecordsWhatWasAccepted(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("identifier") == "refused" {
			http.Error(w, `{"error":{"type":"invalid_request_error"}}`, http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, `{}`)
	}))
	defer upstream.Close()
	t.Setenv("STRIPE_MOCK_URL", upstream.URL)
	m := Start(t)
	m.Outage = func(n int) bool { return n == 1 }
	m.Before = func(n int) bool { return n != 2 }
	post := func(path string, form url.Values) int {
		t.Helper()
		resp, err := http.PostForm(m.URL+path, form)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	event := func(id, value string) int {
		return post("/v1/billing/meter_events", url.Values{"identifier": {id}, "payload[value]": {value}})
	}
	got := []int{event("a", "1"), event("b", "2"), event("a", "5"), event("a", "7"), event("refused", "3"),
		post("/v1/billing/meter_event_adjustments", url.Values{"type": {"cancel"}, "cancel[identifier]": {"a"}}),
		post("/v1/customers", nil)}
	if fmt.Sprint(got) != "[503 0 200 200 400 200 200]" {
		t.Errorf("statuses %v, want [503 0 200 200 400 200 200]", got)
	}
	if e, c := fmt.Sprint(m.Events()), fmt.Sprint(m.Cancellations()); e != "map[a:2]" || c != "map[a:1]" || m.Value("a") != "7" {
		t.Errorf("events %s, cancellations %s, value of a %q; want map[a:2], map[a:1], 7", e, c, m.Value("a"))
	}
}

// fakeT records how server gave up: Fatalf and Skipf end the call, as
// they end a test.
type fakeT struct {
	testing.TB
	fatal, skip string
}

func (f *fakeT) Helper()                        {}
func (f *fakeT) Fatalf(format string, a ...any) { f.fatal = fmt.Sprintf(format, a...); panic(f) }
func (f *fakeT) Skipf(format string, a ...any)  { f.skip = fmt.Sprintf(format, a...); panic(f) }

// callServer calls server(f), which should end by f.Fatalf or f.Skipf.
func callServer(f *fakeT) {
	defer func() {
		if r := recover(); r != nil && r != f {
			panic(r)
		}
	}()
	server(f)
}

// Without STRIPE_MOCK_URL and with no stripe-mock on PATH or in
// $(go env GOPATH)/bin, a test skips, or fails under CI.
func TestWithoutStripeMock(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	gopath := t.TempDir()
	t.Setenv("STRIPE_MOCK_URL", "")
	t.Setenv("PATH", filepath.Dir(goBin))
	t.Setenv("GOPATH", gopath)
	if _, err := exec.LookPath("stripe-mock"); err == nil {
		t.Fatalf("stripe-mock found beside go in %s", filepath.Dir(goBin))
	}
	for ci, want := range map[string]string{"": "skip", "true": "fatal"} {
		t.Setenv("CI", ci)
		f := &fakeT{}
		callServer(f)
		got := map[bool]string{true: "skip", false: "fatal"}[f.skip != ""]
		if got != want || f.fatal+f.skip == "" || !strings.Contains(f.fatal+f.skip, "stripe-mock is neither on PATH") {
			t.Errorf("CI=%q: fatal %q, skip %q; want a %s saying why", ci, f.fatal, f.skip, want)
		}
	}
	bin := filepath.Join(gopath, "bin", "stripe-mock")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := binary(); got != bin || err != nil {
		t.Errorf("binary() = %q, %v; want %s", got, err, bin)
	}
}
