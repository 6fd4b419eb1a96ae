package keyprefix

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"sk_live_abcdefghijklmnopqrstuvwxyz234567", "sk_live_abcd"},
		{"sk_live_q8Vd_x3k_A6oTn_Qw1e_Rt5y_Ui9o_Pa2s_D", "sk_live_q8Vd"}, // '_' in the secret
		{"sk_test_pro", "sk_test_"},                                      // short tail: label only
		{"sk_test_abcdefgh", "sk_test_abcd"},
		{"sk_test_abcdefg", "sk_test_"},
		{"github_pat_11ABCDEFG0123456789", "github_pat_"},
		{"abcdefghijklmnop", "abcd"}, // no label
		{"abcdefg", ""},
		{"", ""},
		{"a_b_c_d_e_0123456789", "a_b_c_d_e_01"}, // the label ends within 8 bytes
		{"secret_", ""},                          // never the whole key
		{"_", ""},
		{"sk_", ""},
		{"sk_live_ab\x00cdefghijkl", "sk_live_ab"}, // stops at a control byte
	}
	for _, tt := range tests {
		if got := Of(tt.raw); got != tt.want {
			t.Errorf("Of(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestClamp(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"sk_live_abcd", "sk_live_abcd"},
		{"sk_live_q8Vd_x3k_A6oTn_Qw1e_Rt5y_Ui9o_Pa2s_", "sk_live_q8Vd"},
		{"sk_test_", "sk_test_"},
		{"abcd", "abcd"},
		{"abcdefghijklmnop", "abcd"},
		{"", ""},
		{"sk live", "sk"},
	}
	for _, tt := range tests {
		if got := Clamp(tt.prefix); got != tt.want {
			t.Errorf("Clamp(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
}

// Conventional labels keys are issued with, and some that are not labels.
var labels = []string{"", "sk_live_", "sk_test_", "rk_live_", "pk_", "whsec_", "github_pat_", "sk-proj-", "ab_cd_ef_gh_"}

// Alphabets of secrets, most with '_' in them.
var alphabets = []string{
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", // base64url
	"abcdefghijklmnopqrstuvwxyz234567",
	"_a",
	"_",
	"0123456789abcdef",
	"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~",
}

// checkOf checks the promises of Of and Clamp for one key: the display
// prefix is a start of the key, never all of it, at most Max characters,
// and Clamp leaves it as it is.
func checkOf(t *testing.T, raw string) string {
	t.Helper()
	p := Of(raw)
	switch {
	case !strings.HasPrefix(raw, p):
		t.Fatalf("Of(%q) = %q, not a start of the key", raw, p)
	case raw != "" && p == raw:
		t.Fatalf("Of(%q) shows the whole key", raw)
	case len(p) > Max:
		t.Fatalf("Of(%q) = %q, %d characters, more than %d", raw, p, len(p), Max)
	case Clamp(p) != p:
		t.Fatalf("Clamp(Of(%q)) = %q, want %q", raw, Clamp(p), p)
	}
	if c := Clamp(raw); len(c) > Max || !strings.HasPrefix(raw, c) {
		t.Fatalf("Clamp(%q) = %q: longer than %d or not a start", raw, c, Max)
	}
	return p
}

// TestOfBoundsWhatIsShown checks, over random keys of many shapes, that no
// display prefix shows more than Max characters, and no more than Shown
// characters of the secret after a label of MaxLabel characters such as
// sk_live_, whatever the secret's alphabet.
func TestOfBoundsWhatIsShown(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		label := labels[r.IntN(len(labels))]
		alphabet := alphabets[r.IntN(len(alphabets))]
		secret := make([]byte, r.IntN(80))
		for i := range secret {
			secret[i] = alphabet[r.IntN(len(alphabet))]
		}
		raw := label + string(secret)
		p := checkOf(t, raw)
		if shown := len(p) - min(len(p), len(label)); len(label) == MaxLabel && label[MaxLabel-1] == '_' && shown > Shown {
			t.Fatalf("Of(%q) = %q shows %d characters of the secret, want at most %d", raw, p, shown, Shown)
		}
	}
}

func FuzzOf(f *testing.F) {
	for _, s := range []string{"sk_live_abcdefghijklmnop", "a_b_c_d_e_f", "", "_", "sk_live_\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) { checkOf(t, raw) })
}
