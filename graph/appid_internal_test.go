package graph

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestTokenAppID: v1.0 tokens name the app in appid, v2.0 tokens in azp; a token naming none, or
// not a JWT, is an error that does not quote the token.
func TestTokenAppID(t *testing.T) {
	jwt := func(payload string) string {
		return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2lnbmF0dXJl"
	}
	tests := []struct {
		name, token, want string
	}{
		{"v1.0 appid", jwt(`{"appid":"11111111-0000-4000-8000-000000000001","idtyp":"app"}`), "11111111-0000-4000-8000-000000000001"},
		{"v2.0 azp", jwt(`{"azp":"22222222-0000-4000-8000-000000000002"}`), "22222222-0000-4000-8000-000000000002"},
		{"appid wins", jwt(`{"appid":"a","azp":"b"}`), "a"},
		{"no app", jwt(`{"sub":"x"}`), ""},
		{"not JSON", jwt(`secret-ish`), ""},
		{"not a JWT", "opaque-secret-token", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tokenAppID(tt.token)
			if got != tt.want || (err == nil) != (tt.want != "") {
				t.Fatalf("tokenAppID = %q, %v; want %q", got, err, tt.want)
			}
			if err != nil && (strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), tt.token)) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}
