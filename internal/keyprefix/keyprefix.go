// Package keyprefix computes the display prefix of an API key: the part
// that identifies it in dashboards, logs and decisions without giving it
// away. The stores use it for every key they hold, whatever its origin.
package keyprefix

import "strings"

const (
	// MaxLabel is how far into a key its label may reach: the label is the
	// key up to and including the last '_' among its first MaxLabel bytes,
	// such as "sk_live_".
	MaxLabel = 8
	// Shown is how many characters after the label a display prefix shows.
	Shown = 4
	// Max is the longest display prefix: at most this many characters of a
	// key, secret or not, are ever shown.
	Max = MaxLabel + Shown
)

// Of returns the display prefix of a raw key: its label and the Shown
// characters after it if at least 2·Shown follow, else the label alone,
// and nothing for a key that is all label. The result stops before the
// first byte that is not printable ASCII or is a space. It is never the
// whole key and never longer than Max.
func Of(raw string) string {
	s := raw[:printable(raw)]
	n := label(s)
	switch rest := len(raw) - n; {
	case rest == 0:
		return ""
	case rest >= 2*Shown:
		n += Shown
	}
	return s[:min(n, len(s))]
}

// Clamp cuts a display prefix stored by a store to at most what Of could
// have made of it: its label and Shown characters, printable ASCII only.
// Clamp(Of(raw)) == Of(raw) for every raw key, so display prefixes made by
// Of pass unchanged, and a prefix that shows too much of a key is cut.
func Clamp(prefix string) string {
	s := prefix[:printable(prefix)]
	return s[:min(len(s), label(s)+Shown)]
}

// label returns the length of s's label.
func label(s string) int {
	return strings.LastIndexByte(s[:min(len(s), MaxLabel)], '_') + 1
}

// printable returns the length of the longest start of s made of printable
// ASCII characters other than space.
func printable(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return i
		}
	}
	return len(s)
}
