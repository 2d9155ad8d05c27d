package bot

import (
	"strings"
	"unicode/utf8"
)

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// escape makes user text safe inside mrkdwn: without < and > it cannot mention <!channel>,
// <!here>, a user or a group, nor forge a link. Slack asks for exactly these three escapes.
func escape(s string) string { return mrkdwnEscaper.Replace(s) }

// The share of a text object one field of user text may take once escaped. Slack refuses a
// section or context text over 3,000 characters, and escaping grows "&" to five: a reason
// typed within its 2,000 characters can render as 10,000. Each share leaves the fixed text
// around the field room enough that no surface goes over, however hostile the text
// (TestRenderedTextFitsSlack renders every surface with the worst).
const (
	// reasonShare keeps every reason typed within the limit whole unless escaping grew it.
	reasonShare = 2200
	// nameShare is for a display name, which Entra ID allows up to 256 characters.
	nameShare = 200
	// upnShare keeps every UPN whole (Entra ID allows 113 characters) unless escaping grew it.
	upnShare = 150
	// detailShare is for the smaller things Entra ID or a person named: privileged roles and
	// groups, why a request failed, a sign-in method's name.
	detailShare = 500
	// messageShare is for an error's sentence, which may quote a UPN or what was typed.
	messageShare = 1000
	// whoShare is for a list of mentions of who may decide.
	whoShare = 400
	// maxText is Slack's limit for a section's or a context element's text.
	maxText = 3000
)

// ellipsis marks where clip cut text.
const ellipsis = "…"

// clip shortens rendered mrkdwn (user text already escaped, tapbot's own <...> markup) to at
// most limit characters, counted as Slack counts them (runes). It cuts only between whole units:
// an entity (&amp; &lt; &gt;) and a token in angle brackets (<@U123>, <!date^...|...>) are kept
// or dropped whole, since half of one is either shown as garbage or, worse, read as markup up
// to the next ">". The cut is marked with "…", so a reader knows there was more.
func clip(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	if limit < 1 {
		return ""
	}
	kept, end := 0, 0 // characters and bytes kept
	for end < len(s) {
		size, chars := unitAt(s[end:])
		if kept+chars > limit-1 { // room for the ellipsis
			break
		}
		kept, end = kept+chars, end+size
	}
	return strings.TrimRight(s[:end], " ") + ellipsis
}

// unitAt is the size in bytes and in characters of the unit s starts with: an entity, a token
// in angle brackets, or one character.
func unitAt(s string) (size, chars int) {
	switch s[0] {
	case '&':
		for _, e := range [...]string{"&amp;", "&lt;", "&gt;"} {
			if strings.HasPrefix(s, e) {
				return len(e), len(e)
			}
		}
	case '<':
		// Escaped user text holds no "<": every one is tapbot's own markup, closed by ">".
		if i := strings.IndexByte(s, '>'); i > 0 {
			return i + 1, utf8.RuneCountInString(s[:i+1])
		}
	}
	_, size = utf8.DecodeRuneInString(s)
	return size, 1
}

// oneLine escapes user text and keeps it on one line, so a reason cannot fake lines such as
// "*For:*" in a message approvers rely on.
func oneLine(s string) string {
	return escape(strings.Join(strings.Fields(s), " "))
}

// reasonText renders a request's reason for any surface: escaped, on one line, within its share.
func reasonText(s string) string { return clip(oneLine(s), reasonShare) }

// nameText renders a display name from the directory.
func nameText(s string) string { return clip(oneLine(s), nameShare) }

// upnText renders a UPN (or the address given for a person).
func upnText(s string) string { return clip(oneLine(s), upnShare) }

// detailText renders a short text from the directory or the service, such as the privileged
// roles of an account or why a request failed.
func detailText(s string) string { return clip(oneLine(s), detailShare) }
