package approvals_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/tapbot/tapbot/approvals"
)

func TestSealerRoundTripAndBinding(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	old, _ := approvals.NewSealer(k1)
	rotated, err := approvals.NewSealer(k2, k1)
	if err != nil {
		t.Fatal(err)
	}
	sealed := old.Seal("tap_a", []byte("Qz8!x2Lk"))
	if bytes.Contains(sealed, []byte("Qz8!x2Lk")) {
		t.Fatal("sealed value holds the plaintext")
	}
	if pt, err := rotated.Open("tap_a", sealed); err != nil || string(pt) != "Qz8!x2Lk" {
		t.Fatalf("a rotated sealer cannot open a value sealed with its second key: %q %v", pt, err)
	}
	if _, err := rotated.Open("tap_b", sealed); !errors.Is(err, approvals.ErrUnsealable) {
		t.Fatalf("a sealed pass opened for another request: %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := rotated.Open("tap_a", sealed); !errors.Is(err, approvals.ErrUnsealable) {
		t.Fatalf("a tampered value opened: %v", err)
	}
	newOnly, _ := approvals.NewSealer(k2)
	if _, err := newOnly.Open("tap_a", old.Seal("tap_a", []byte("x"))); !errors.Is(err, approvals.ErrUnsealable) {
		t.Fatal("a value opened without its key")
	}
}

func TestParseKeys(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	tests := []struct {
		in      string
		n       int
		wantErr string
	}{
		{good, 1, ""},
		{good + ", " + good, 2, ""},
		{"", 0, "no key"},
		{"not base64!", 0, "not valid base64"},
		{base64.StdEncoding.EncodeToString([]byte("short")), 0, "want 32"},
	}
	for _, tt := range tests {
		keys, err := approvals.ParseKeys(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseKeys(%q) = %v, want error with %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || len(keys) != tt.n {
			t.Errorf("ParseKeys(%q) = %d keys, %v", tt.in, len(keys), err)
		}
	}
}

// TestKeyIDs: replicas compare keys by fingerprint, so the same key gives the same fingerprint
// on every replica, different keys different ones, in the order of the list.
func TestKeyIDs(t *testing.T) {
	a, b := bytes.Repeat([]byte{1}, approvals.KeySize), bytes.Repeat([]byte{2}, approvals.KeySize)
	ab, err := approvals.NewSealer(a, b)
	if err != nil {
		t.Fatal(err)
	}
	ba, err := approvals.NewSealer(b, a)
	if err != nil {
		t.Fatal(err)
	}
	x, y := ab.KeyIDs(), ba.KeyIDs()
	if len(x) != 2 || x[0] == x[1] || x[0] != y[1] || x[1] != y[0] || len(x[0]) != 8 {
		t.Fatalf("fingerprints %v and %v: want two distinct 8-character ones, in list order", x, y)
	}
}
