package bot

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/tapbot/tapbot/approvals"
)

// PassModalIn shows the pass itself: the code in a monospace block that copies cleanly, when it
// starts and stops working in the recipient's own time zone (loc, from users.info; nil lets
// Slack render the times), whether it works once or until it expires, and the steps to register
// a passkey or security key with it. Modals leave no history in Slack.
func PassModalIn(r *approvals.Request, code string, loc *time.Location) slack.ModalViewRequest {
	uses := "It works for one sign-in."
	if !r.UsableOnce {
		uses = "It works for any number of sign-ins until it expires."
	}
	var when strings.Builder
	if scheduled(r) {
		fmt.Fprintf(&when, "*Works from:* %s\n", inZone(r.PassStartsAt, loc))
	}
	fmt.Fprintf(&when, "*Valid until:* %s\n%s", inZone(r.PassExpiresAt, loc), uses)
	account := "your work account"
	if !r.RecipientIsRequester() && r.Target.UPN != "" {
		account = "*" + upnText(r.Target.UPN) + "*"
	}
	steps := []string{
		fmt.Sprintf("Open <%s> on the device where you want to sign in from now on.", SecurityInfoURL),
		fmt.Sprintf("Sign in as %s. When you are asked for a password, choose to use a Temporary Access Pass and type the pass above.", account),
		"Choose *+ Add sign-in method*, then *Passkey* (or *Security key*), and follow the prompts.",
		"Close this window. From now on, sign in with your passkey or security key.",
	}
	if scheduled(r) {
		steps[0] = fmt.Sprintf("Wait until %s, when the pass starts working. Then open <%s> on the device where you want to sign in from now on.",
			inZone(r.PassStartsAt, loc), SecurityInfoURL)
	}
	if r.RecipientIsRequester() {
		steps = []string{
			fmt.Sprintf("Read this pass out to %s, who is with you, on the phone or on a video call. Never email, paste or photograph it.", upnText(r.Target.UPN)),
			fmt.Sprintf("They open <%s>, sign in as %s with it instead of a password, and add a passkey or security key under *+ Add sign-in method*.", SecurityInfoURL, upnText(r.Target.UPN)),
			"Stay with them until the passkey works: the pass is not shown again.",
		}
		if scheduled(r) {
			steps[1] = fmt.Sprintf("From %s, when the pass starts working, they open <%s>, sign in as %s with it instead of a password, and add a passkey or security key under *+ Add sign-in method*.",
				inZone(r.PassStartsAt, loc), SecurityInfoURL, upnText(r.Target.UPN))
		}
	}
	var list strings.Builder
	list.WriteString("*Next steps*")
	for i, s := range steps {
		fmt.Fprintf(&list, "\n%d. %s", i+1, s)
	}
	return slack.ModalViewRequest{
		Type:  slack.VTModal,
		Title: plain("Your access pass"),
		Close: plain("Done"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			section("Your Temporary Access Pass:"),
			slack.NewRichTextBlock("pass", &slack.RichTextPreformatted{
				Type:     slack.RTEPreformatted,
				Elements: []slack.RichTextSectionElement{slack.NewRichTextSectionTextElement(code, nil)},
			}),
			section(when.String()),
			section(list.String()),
			note("This is the only time the pass is shown. Do not paste it anywhere. Close this window when you are done."),
		}},
	}
}
