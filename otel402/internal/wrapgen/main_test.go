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

// Each table has a wrapper for each of the 2⁹ sets of capabilities, each
// embedding the Store and the method set of each capability in its set.
func TestTablesCoverEverySet(t *testing.T) {
	fs, err := files()
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range fs {
		if n := bytes.Count(src, []byte("store.Store {\n")); n != 512 {
			t.Errorf("%s: %d wrappers, want 512", name, n)
		}
		if !bytes.HasPrefix(src, []byte("// Code generated ")) || !bytes.Contains(src, []byte(" DO NOT EDIT.\n")) {
			t.Errorf("%s lacks the generated-code header", name)
		}
	}
	if got := fs["wrappers_gen.go"]; !bytes.Contains(got, []byte("0b111111111: func(c *instrumented) store.Store {\n\t\treturn &struct {\n\t\t\t*instrumented\n\t\t\trefunds\n\t\t\tbucketTakes\n\t\t\tbucketSpends\n\t\t\tadmins\n\t\t\tledgerEntries\n\t\t\tholds\n\t\t\tbucketHolds\n\t\t\tslotLeases\n\t\t\tspendCaps\n\t\t}")) {
		t.Error("wrappers_gen.go: the wrapper of every capability does not embed every method set")
	}
}
