package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
)

// readmeBlocks returns the fenced code blocks of the given language in the
// section of the repository's README.md whose heading is heading.
func readmeBlocks(t *testing.T, heading, lang string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no heading %q", heading)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var blocks []string
	for {
		_, rest, ok := strings.Cut(section, "```"+lang+"\n")
		if !ok {
			return blocks
		}
		block, after, _ := strings.Cut(rest, "```\n")
		blocks = append(blocks, block)
		section = after
	}
}

// TestQuickStartIsREADME: the README's Quick start is the program in
// quickstart/, which the tests build.
func TestQuickStartIsREADME(t *testing.T) {
	code, err := os.ReadFile("quickstart/main.go")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, "## Quick start", "go")
	if len(blocks) == 0 || blocks[0] != string(code) {
		t.Errorf("the README's Quick start differs from quickstart/main.go:\n%v", blocks)
	}
}

// TestREADMEResponses: the example responses in the README are what this
// example answers, but for Date and Content-Length.
func TestREADMEResponses(t *testing.T) {
	h, _, _ := newTestServer(t)
	do := func(method, path, key string) string {
		r := httptest.NewRequest(method, path, nil)
		r.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return render(w)
	}
	var got []string
	got = append(got, do("GET", "/hello", "sk_test_unknown"))
	got = append(got, do("GET", "/reports", "sk_test_free"))
	got = append(got, do("POST", "/generate", "sk_test_free"))
	do("GET", "/hello", "sk_test_free") // with POST /generate, the burst of 2 is spent
	got = append(got, do("GET", "/hello", "sk_test_free"))
	want := readmeBlocks(t, "## Responses", "http")
	if !slices.Equal(got, want) {
		t.Errorf("README.md's responses differ from the example's. The example answers:\n\n%s",
			strings.Join(got, "```\n\n```http\n"))
	}
}

// render writes a recorded response as the README shows it.
func render(w *httptest.ResponseRecorder) string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\n", w.Code, http.StatusText(w.Code))
	names := make([]string, 0, len(w.Header()))
	for name := range w.Header() {
		if name != "Date" && name != "Content-Length" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range w.Header()[name] {
			b.WriteString(name + ": " + v + "\n")
		}
	}
	b.WriteString("\n" + strings.TrimRight(w.Body.String(), "\n") + "\n")
	return b.String()
}
