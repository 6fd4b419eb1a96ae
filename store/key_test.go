package store_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/go402/go402/store"
)

func TestDigestOf(t *testing.T) {
	// FIPS 180-2, appendix B.1.
	const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := store.DigestOf("abc").String(); got != abc {
		t.Errorf("DigestOf(abc) = %s, want %s", got, abc)
	}
}

func TestDigestText(t *testing.T) {
	d := store.DigestOf("sk_test_text")
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"` + d.String() + `"`; string(b) != want {
		t.Errorf("json.Marshal(digest) = %s, want %s", b, want)
	}
	var back store.Digest
	if err := json.Unmarshal(b, &back); err != nil || back != d {
		t.Errorf("round trip = %v, %v; want %v", back, err, d)
	}
	for _, bad := range []string{"", "ab", d.String() + "00", strings.Repeat("zz", 32), strings.ToUpper(d.String())[:63]} {
		var got store.Digest
		if err := got.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) succeeded", bad)
		}
	}
	var upper store.Digest
	if err := upper.UnmarshalText([]byte(strings.ToUpper(d.String()))); err != nil || upper != d {
		t.Errorf("UnmarshalText(upper case) = %v, %v; want %v", upper, err, d)
	}
}

// NewKey's display prefix shows at most 4 characters after a label of 8,
// even of a secret with '_' in it, and at most 12 of any key.
func TestNewKeyPrefix(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"sk_live_abcdefghijklmnopqrstuvwxyz234567", "sk_live_abcd"},
		{"sk_live_q8Vd_x3kA6oTn_Qw1eRt5yUi9oPa2sDf_gH7jK", "sk_live_q8Vd"},
		{"sk_test_pro", "sk_test_"},
		{"a_b_c_d_e_f_g_h_0123456789", "a_b_c_d_e_f_"},
		{"secret_", ""},
	}
	for _, tt := range tests {
		if got := store.NewKey(tt.raw, "acct").Prefix; got != tt.want {
			t.Errorf("NewKey(%q).Prefix = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	seen := map[string]bool{}
	for _, prefix := range []string{"sk_live_", "", "pk-", strings.Repeat("p", 32)} {
		for range 50 {
			raw, err := store.GenerateKey(prefix)
			if err != nil {
				t.Fatalf("GenerateKey(%q): %v", prefix, err)
			}
			random, ok := strings.CutPrefix(raw, prefix)
			if !ok || len(random) != 32 || strings.Trim(random, "abcdefghijklmnopqrstuvwxyz234567") != "" {
				t.Fatalf("GenerateKey(%q) = %q, want the prefix and 32 of [a-z2-7]", prefix, raw)
			}
			if seen[random] {
				t.Fatalf("GenerateKey repeated %q", random)
			}
			seen[random] = true
		}
	}
	for _, prefix := range []string{strings.Repeat("p", 33), "sk live_", "sk\n", "ключ_", "\x7f"} {
		if raw, err := store.GenerateKey(prefix); err == nil || raw != "" {
			t.Errorf("GenerateKey(%q) = %q, %v; want an error", prefix, raw, err)
		}
	}
}

func TestNewKey(t *testing.T) {
	k := store.NewKey("sk_test_newkey_0123456789", "acct")
	want := store.Key{Digest: store.DigestOf("sk_test_newkey_0123456789"), Prefix: "sk_test_newk", AccountID: "acct"}
	if k != want {
		t.Errorf("NewKey = %+v, want %+v", k, want)
	}
}

// FuzzDigestUnmarshalText checks that decoding arbitrary text never
// panics and that whatever decodes encodes back to the same digest.
func FuzzDigestUnmarshalText(f *testing.F) {
	f.Add(store.DigestOf("seed").String())
	f.Add("")
	f.Add("zz")
	f.Fuzz(func(t *testing.T, s string) {
		var d store.Digest
		if err := d.UnmarshalText([]byte(s)); err != nil {
			return
		}
		if !strings.EqualFold(d.String(), s) {
			t.Errorf("UnmarshalText(%q) then String() = %q", s, d.String())
		}
	})
}
