package bot

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"fits", "new laptop", 10, "new laptop"},
		{"empty", "", 0, ""},
		{"plain cut", "new laptop", 5, "new…"},
		{"no room at all", "new laptop", 0, ""},
		{"room for the mark only", "new laptop", 1, "…"},
		{"trailing space before the mark", "abc def", 5, "abc…"},
		{"entity kept whole", "ab&amp;cd", 8, "ab&amp;…"},
		{"entity that would be cut is dropped", "ab&amp;cd", 7, "ab…"},
		{"entity cut anywhere inside", "ab&amp;cd", 4, "ab…"},
		{"&lt; dropped whole", "x&lt;y", 4, "x…"},
		{"&gt; dropped whole", "x&gt;y", 5, "x…"},
		{"a run of entities", strings.Repeat("&amp;", 5), 13, "&amp;&amp;…"},
		{"a bare & is one character", "a&b c", 3, "a&…"},
		{"mention dropped whole", "hi <@U123> there", 8, "hi…"},
		{"mention kept whole", "hi <@U123> there", 11, "hi <@U123>…"},
		{"group mention", "<!subteam^S1> and <@U2>", 20, "<!subteam^S1> and…"},
		{"date token with its fallback", "at <!date^1700000000^{date_short_pretty}|2023-11-14 22:13 UTC> ok", 30, "at…"},
		{"link with a label", "see <https://aka.ms/mysecurityinfo|here> now", 41, "see <https://aka.ms/mysecurityinfo|here>…"},
		{"unclosed < is one character", "a<b c", 3, "a<…"},
		{"two-byte runes", "ééééé", 3, "éé…"},
		{"three-byte runes", "日本語テキスト", 4, "日本語…"},
		{"four-byte runes", "😀😀😀", 2, "😀…"},
		{"multi-byte fits exactly", "ééé", 3, "ééé"},
		{"runes and entities", "é&amp;é", 3, "é…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := clip(tt.in, tt.max)
			if got != tt.want {
				t.Fatalf("clip(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

// TestClipKeepsUnitsWhole cuts hostile rendered text at every length: the result is valid
// UTF-8 within the limit, is a prefix of the text (and the text itself when it fits), and holds
// no half entity or half <...> token that Slack would read as markup.
func TestClipKeepsUnitsWhole(t *testing.T) {
	texts := []string{
		oneLine(strings.Repeat("&", 40)),
		oneLine("<!channel> <@UEVIL> & <https://evil.example|click> é日😀\n*For:* you"),
		"*For:* <@UADA> · " + oneLine("Ada & <Co>") + " asked <!date^1700000000^{date_short_pretty} at {time}|2023-11-14 22:13 UTC>",
		"Who can: " + mentions([]string{"UAPPROVER", "SAPPROVERS", "U0123456789"}),
	}
	for _, text := range texts {
		n := utf8.RuneCountInString(text)
		for max := 1; max <= n+1; max++ {
			got := clip(text, max)
			if c := utf8.RuneCountInString(got); c > max || !utf8.ValidString(got) {
				t.Fatalf("clip(%q, %d) = %q: %d characters", text, max, got, c)
			}
			if max >= n {
				if got != text {
					t.Fatalf("clip(%q, %d) = %q changed text that fits", text, max, got)
				}
				continue
			}
			kept := strings.TrimSuffix(got, ellipsis)
			if kept == got || !strings.HasPrefix(text, kept) {
				t.Fatalf("clip(%q, %d) = %q is not a marked prefix", text, max, got)
			}
			if strings.HasSuffix(kept, " ") {
				t.Fatalf("clip(%q, %d) = %q keeps a trailing space", text, max, got)
			}
			for i := 0; i < len(kept); i++ {
				switch kept[i] {
				case '&':
					if !strings.HasPrefix(kept[i:], "&amp;") && !strings.HasPrefix(kept[i:], "&lt;") && !strings.HasPrefix(kept[i:], "&gt;") {
						t.Fatalf("clip(%q, %d) = %q cuts an entity", text, max, got)
					}
				case '<':
					if !strings.Contains(kept[i:], ">") {
						t.Fatalf("clip(%q, %d) = %q cuts a token", text, max, got)
					}
				}
			}
		}
	}
}

func TestRenderedFieldsStayOnOneLine(t *testing.T) {
	tests := []struct {
		name   string
		render func(string) string
		in     string
		want   string
	}{
		{"reason", reasonText, "new laptop\n*For:* <@UOUTSIDER>\r\n\tok\u2028*x*", "new laptop *For:* &lt;@UOUTSIDER&gt; ok *x*"},
		{"name", nameText, "Ada\nLovelace", "Ada Lovelace"},
		{"upn", upnText, "ada@example.com\n*For:*", "ada@example.com *For:*"},
		{"detail", detailText, "Global Administrator\n<!here>", "Global Administrator &lt;!here&gt;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.render(tt.in); got != tt.want {
				t.Fatalf("%s(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
			}
		})
	}
}
