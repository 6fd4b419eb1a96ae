package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The generated files in otel402 are what wrapgen writes now: a change to
// the capabilities here without go generate fails.
func TestGeneratedFilesAreFresh(t *testing.T) {
	fs, err := files()
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 2 {
		t.Fatalf("%d files, want 2", len(fs))
	}
	for name, want := range fs {
		got, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go generate in otel402", name)
		}
	}
}

// Each table has a type and a function for each of the 2⁹ sets of
// capabilities; the type of every capability embeds every method set.
func TestTablesCoverEverySet(t *testing.T) {
	fs, err := files()
	if err != nil {
		t.Fatal(err)
	}
	for name, funcOf := range map[string]string{"wrappers_gen.go": "func(c *instrumented) store.Store {", "fakes_gen_test.go": "func(f *fake) store.Store {"} {
		src := fs[name]
		if n := bytes.Count(src, []byte(funcOf)); n != 512 {
			t.Errorf("%s: %d functions, want 512", name, n)
		}
		if n := bytes.Count(src, []byte(" struct {\n")); n != 512 {
			t.Errorf("%s: %d types, want 512", name, n)
		}
		if !bytes.HasPrefix(src, []byte("// Code generated ")) || !bytes.Contains(src, []byte(" DO NOT EDIT.\n")) {
			t.Errorf("%s lacks the generated-code header", name)
		}
	}
	all := "\twrapper111111111 struct {\n\t\tcore\n\t\trefunds\n\t\tbucketTakes\n\t\tbucketSpends\n\t\tadmins\n" +
		"\t\tledgerEntries\n\t\tholds\n\t\tbucketHolds\n\t\tslotLeases\n\t\tspendCaps\n\t}\n"
	if !bytes.Contains(fs["wrappers_gen.go"], []byte(all)) {
		t.Error("wrappers_gen.go: the wrapper of every capability does not embed every method set")
	}
}
