package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/go402/go402/store"
)

// The server's metrics, scraped over HTTP after allowed, 401, 402, 429 and
// refunded requests, count each of them.
func TestScrapedMetrics(t *testing.T) {
	clock := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	mem := store.NewMemory(&store.MemoryOptions{Clock: clock})
	if err := seed(context.Background(), mem); err != nil {
		t.Fatal(err)
	}
	h, err := newServer(mem, prometheus.NewRegistry(), clock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, c := range []struct {
		method, path, key string
		status            int
	}{
		{"GET", "/hello", "", 401},
		{"GET", "/hello", "sk_test_pro", 200},
		{"POST", "/generate", "sk_test_pro", 200},
		{"POST", "/generate", "sk_test_pro", 200},
		{"POST", "/generate", "sk_test_free", 402},
		{"GET", "/hello", "sk_test_free", 200},
		{"GET", "/hello", "sk_test_free", 200},
		{"GET", "/hello", "sk_test_free", 429},
		{"POST", "/flaky", "sk_test_pro", 502},
	} {
		if got := send(t, srv.URL, c.method, c.path, c.key); got != c.status {
			t.Fatalf("%s %s with %q: status %d, want %d", c.method, c.path, c.key, got, c.status)
		}
	}
	families := scrape(t, srv.URL+"/metrics")
	for _, c := range []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"go402_decisions_total", map[string]string{"go402_step": "authenticate", "go402_code": "missing_key", "http_route": "GET /hello"}, 1},
		{"go402_decisions_total", map[string]string{"go402_step": "charge", "go402_allowed": "true", "go402_plan": "pro", "http_route": "POST /generate"}, 2},
		{"go402_decisions_total", map[string]string{"go402_step": "charge", "go402_code": "insufficient_credits", "go402_plan": "free"}, 1},
		{"go402_decisions_total", map[string]string{"go402_step": "limit", "go402_code": "rate_limited", "go402_plan": "free"}, 1},
		{"go402_decisions_total", map[string]string{"go402_step": "refund", "go402_allowed": "true", "http_route": "POST /flaky"}, 1},
		{"go402_credits_debited_total", map[string]string{"go402_plan": "pro", "http_route": "POST /generate"}, 2 * generateCost},
		{"go402_credits_debited_total", map[string]string{"go402_plan": "pro", "http_route": "POST /flaky"}, flakyCost},
		{"go402_credits_refunded_total", map[string]string{"go402_plan": "pro", "http_route": "POST /flaky"}, flakyCost},
		{"go402_ratelimit_refusals_total", map[string]string{"go402_policy": "burst", "go402_plan": "free", "http_route": "GET /hello"}, 1},
		{"go402_decision_duration_seconds", map[string]string{"go402_step": "charge", "go402_allowed": "true"}, 3},
		{"go402_decision_duration_seconds", nil, 9}, // once per request
		{"go402_store_duration_seconds", map[string]string{"go402_store_operation": "lookup"}, 8},
		{"go402_store_duration_seconds", map[string]string{"go402_store_operation": "spend_with_tokens"}, 3},
		{"go402_store_duration_seconds", map[string]string{"go402_store_operation": "refund"}, 1},
	} {
		if got := total(families[c.family], c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.family, c.labels, got, c.want)
		}
	}
	if bal := balance(t, mem, "acct_pro"); bal != 1000-2*generateCost {
		t.Errorf("pro balance %d, want %d", bal, 1000-2*generateCost)
	}
}

func send(t *testing.T, base, method, path, key string) int {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// scrape fetches and parses the Prometheus text exposition at url.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// total adds the values (a histogram's count) of the family's series whose
// labels include want.
func total(f *dto.MetricFamily, want map[string]string) float64 {
	if f == nil {
		return -1
	}
	var sum float64
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		switch {
		case !match:
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func balance(t *testing.T, mem *store.Memory, id string) int64 {
	t.Helper()
	a, err := mem.Account(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance
}
