package bot

import (
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// Command is a parsed /tap invocation.
type Command struct {
	Help         bool // /tap help
	Modal        bool // /tap alone: open the request form
	Status       bool // /tap status: the requester's recent requests
	TargetUserID string
	TargetEmail  string
	Lifetime     time.Duration // zero: the configured default
	UsableOnce   bool
	Reason       string
}

// Usage is shown for /tap help and after every input error.
const Usage = "*Usage*\n" +
	"• `/tap` opens a request form, where you can also pick when the pass starts (a new hire's first morning).\n" +
	"• `/tap status` lists your recent requests, and cancels one that waits for approval.\n" +
	"• `/tap @person [lifetime] [once|multi] reason` asks for a pass directly, e.g. `/tap @ada 2h once new laptop, setting up a passkey`.\n" +
	"• `@person` may also be an email address or UPN, e.g. `ada@example.com`.\n" +
	"• Lifetime: minutes, hours or days such as `90m`, `2h`, `1h30m`, `1d`; the default is %s, the maximum %s.\n" +
	"• `once` (the default) makes a pass that works for one sign-in; `multi` one that works until it expires.\n" +
	"• A reason is required; approvers see it."

var (
	mentionRE = regexp.MustCompile(`^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$`)
	mailtoRE  = regexp.MustCompile(`^<mailto:([^|>]+)(?:\|[^>]*)?>$`)
)

// slackEntities undoes the three escapes Slack applies to the text it sends (&, < and > typed by
// a person arrive as &amp; &lt; &gt;), so a reason is stored as typed and escaped once on output.
var slackEntities = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// ParseCommand reads the text after /tap. Errors are sentences for the person who typed it.
func ParseCommand(text string) (Command, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return Command{Modal: true}, nil
	}
	if len(text) > 3000 {
		return Command{}, approvals.Errorf(approvals.Invalid, "That request is too long (%d characters); keep the reason under 2,000 characters.", len(text))
	}
	if strings.EqualFold(text, "help") {
		return Command{Help: true}, nil
	}
	if strings.EqualFold(text, "status") {
		return Command{Status: true}, nil
	}
	first, rest := cutWord(text)
	c := Command{UsableOnce: true}
	switch {
	case mentionRE.MatchString(first):
		c.TargetUserID = mentionRE.FindStringSubmatch(first)[1]
	case mailtoRE.MatchString(first):
		c.TargetEmail = mailtoRE.FindStringSubmatch(first)[1]
	case strings.HasPrefix(first, "@"):
		return Command{}, approvals.Errorf(approvals.Invalid, "I could not tell who %s is. Pick the person from Slack's @-mention list so it turns into a link, or use their email address.", first)
	case strings.Contains(first, "@"):
		addr, err := mail.ParseAddress(first)
		if err != nil || addr.Address != first || !strings.Contains(first[strings.LastIndex(first, "@"):], ".") {
			return Command{}, approvals.Errorf(approvals.Invalid, "%s is not a valid email address or UPN.", first)
		}
		c.TargetEmail = first
	default:
		return Command{}, approvals.Errorf(approvals.Invalid, "The first word must be the person the pass is for: an @-mention or an email address, not “%s”.", first)
	}

	word, after := cutWord(rest)
	if word != "" && (word[0] >= '0' && word[0] <= '9' || word[0] == '-') {
		d, err := approvals.ParseLifetime(word)
		if err != nil {
			return Command{}, approvals.WrapError(approvals.Invalid, err, "%s.", capitalize(err.Error()))
		}
		c.Lifetime = d
		rest = after
		word, after = cutWord(rest)
	}
	switch strings.ToLower(word) {
	case "once", "one-time", "onetime":
		c.UsableOnce, rest = true, after
	case "multi", "multi-use", "multiuse", "reusable":
		c.UsableOnce, rest = false, after
	}
	c.Reason = slackEntities.Replace(strings.TrimSpace(rest))
	if c.Reason == "" {
		return Command{}, approvals.Errorf(approvals.Invalid, "A reason is required, so approvers know why the pass is needed.")
	}
	if len(c.Reason) > 2000 {
		return Command{}, approvals.Errorf(approvals.Invalid, "The reason is %d characters long; keep it under 2,000.", len(c.Reason))
	}
	return c, nil
}

// cutWord splits off the first whitespace-separated word.
func cutWord(s string) (word, rest string) {
	s = strings.TrimLeft(s, " \t\n")
	i := strings.IndexAny(s, " \t\n")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t\n")
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
