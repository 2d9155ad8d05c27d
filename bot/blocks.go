package bot

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/slackrate"
)

// Action IDs of tapbot's buttons and the callback ID of its request form. Button values carry
// only a request ID; every click is checked against the stored request.
const (
	ActionApprove = "tap_approve"
	ActionDeny    = "tap_deny"
	ActionReveal  = "tap_reveal"
	ActionRevoke  = "tap_revoke"
	ActionReport  = "tap_report"
	ActionCancel  = "tap_cancel"
	CallbackForm  = "tap_request"
)

// SecurityInfoURL is where a person registers a passkey or Authenticator with their pass.
const SecurityInfoURL = "https://aka.ms/mysecurityinfo"

// mrkdwn is verbatim so Slack does not auto-parse bare @channel, @here or #channel in user text;
// tapbot writes every mention and date it means as explicit <...> markup.
func mrkdwn(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, text, false, true)
}

func plain(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, text, false, false)
}

func section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(mrkdwn(text), nil, nil)
}

func note(text string) *slack.ContextBlock {
	return slack.NewContextBlock("", mrkdwn(text))
}

// slackDate renders a time in each reader's own time zone, with a UTC fallback.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} at {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func usage(r *approvals.Request) string {
	if r.UsableOnce {
		return "one-time"
	}
	return "multi-use"
}

// targetText names the target for approvers: the Slack mention when there is one, and always the
// Entra identity the pass will be made for. Name and UPN each keep to their share, so the target
// fits wherever it is named.
func targetText(t approvals.Target) string {
	entra := upnText(t.UPN)
	if t.DisplayName != "" {
		entra = nameText(t.DisplayName) + " (" + entra + ")"
	}
	if t.SlackID == "" {
		return entra
	}
	return fmt.Sprintf("<@%s> · %s", t.SlackID, entra)
}

// ApprovalBlocks renders the message approvers see in the approval channel, for any state.
func ApprovalBlocks(r *approvals.Request) []slack.Block {
	blocks := []slack.Block{
		slack.NewHeaderBlock(plain("Temporary Access Pass request")),
		section(fmt.Sprintf("*Requested by:* <@%s>\n*For:* %s\n*Lifetime:* %s\n*Reason:* %s",
			r.Requester, targetText(r.Target), lifetimeText(r), reasonText(r.Reason))),
	}
	if r.ReplacesActivePass {
		blocks = append(blocks, note(":warning: This person already has an active Temporary Access Pass; approving replaces it."))
	}
	if r.Target.Disabled {
		blocks = append(blocks, note(fmt.Sprintf(":information_source: %s was disabled in Entra ID when this was asked (a new hire's account, usually enabled on their first day). The pass works only once the account is enabled.",
			upnText(r.Target.UPN))))
	}
	if r.RecipientIsRequester() {
		blocks = append(blocks, note(fmt.Sprintf(":information_source: %s has no Slack account, so the pass will be sent to <@%s> to hand over.",
			upnText(r.Target.UPN), r.Requester)))
	}
	if r.Privileged.Privileged() {
		blocks = append(blocks, note(fmt.Sprintf(":rotating_light: *Privileged account* (%s): only the protected approvers may decide.",
			detailText(privilegeText(r.Privileged)))))
	}
	if r.Manager != "" && r.State == approvals.Pending {
		blocks = append(blocks, note(fmt.Sprintf(":bust_in_silhouette: You are asked as the manager of %s in Entra ID.", upnText(r.Target.UPN))))
	}
	if !r.ReportedAt.IsZero() {
		blocks = append(blocks, note(fmt.Sprintf(":rotating_light: The recipient said *this wasn't me* %s.", slackDate(r.ReportedAt))))
	}
	if !r.RegisteredAt.IsZero() {
		blocks = append(blocks, registeredNote(r))
	}
	switch r.State {
	case approvals.Issued, approvals.Revealing, approvals.Revealed:
		blocks = append(blocks,
			slack.NewActionBlock("revoke", slack.NewButtonBlockElement(ActionRevoke, r.ID, plain("Revoke")).WithStyle(slack.StyleDanger)),
			note(fmt.Sprintf("%s · request `%s`", outcomeText(r), r.ID)))
		return blocks
	}
	switch r.State {
	case approvals.Pending:
		blocks = append(blocks,
			slack.NewActionBlock("decision",
				slack.NewButtonBlockElement(ActionApprove, r.ID, plain("Approve")).WithStyle(slack.StylePrimary),
				slack.NewButtonBlockElement(ActionDeny, r.ID, plain("Deny")).WithStyle(slack.StyleDanger)),
			note(fmt.Sprintf("Request `%s` · can be approved until %s", r.ID, slackDate(r.ExpiresAt))))
	default:
		blocks = append(blocks, note(fmt.Sprintf("%s · request `%s`", outcomeText(r), r.ID)))
	}
	return blocks
}

// ApprovalText is the notification text of the approval message.
func ApprovalText(r *approvals.Request) string {
	return fmt.Sprintf("Temporary Access Pass request for %s: %s", upnText(r.Target.UPN), outcomeText(r))
}

// outcomeText says where a request stands, in a few words for a message footer.
func outcomeText(r *approvals.Request) string {
	switch r.State {
	case approvals.Pending:
		return "waiting for approval"
	case approvals.Issuing:
		return fmt.Sprintf(":hourglass_flowing_sand: Approved by <@%s>; creating the pass…", r.DecidedBy)
	case approvals.Issued, approvals.Revealing:
		if r.RevealMessage.IsZero() {
			return fmt.Sprintf(":warning: Approved by <@%s>; the pass was created, but the DM to <@%s> could not be delivered. Nobody has seen it; it expires %s", r.DecidedBy, r.Recipient, slackDate(r.PassExpiresAt))
		}
		return fmt.Sprintf(":white_check_mark: Approved by <@%s>; pass sent to <@%s>, %s", r.DecidedBy, r.Recipient, validity(r))
	case approvals.Revealed:
		return fmt.Sprintf(":white_check_mark: Approved by <@%s>; revealed by <@%s> %s", r.DecidedBy, r.Recipient, slackDate(r.RevealedAt))
	case approvals.Denied:
		return fmt.Sprintf(":no_entry_sign: Denied by <@%s>", r.DecidedBy)
	case approvals.Expired:
		if r.DecidedBy != "" {
			return fmt.Sprintf(":hourglass: Approved by <@%s>; the pass expired %s before it was revealed", r.DecidedBy, slackDate(r.PassExpiresAt))
		}
		return ":hourglass: Expired without a decision"
	case approvals.Failed:
		return fmt.Sprintf(":x: Approved by <@%s>, but failed: %s", r.DecidedBy, detailText(r.Failure))
	case approvals.Cancelled:
		if r.CancelledBy != "" {
			return fmt.Sprintf(":heavy_minus_sign: Withdrawn by <@%s>", r.CancelledBy)
		}
		return ":heavy_minus_sign: Cancelled: " + detailText(r.Failure)
	case approvals.Revoked:
		if r.RemovedInEntraBy != "" {
			return fmt.Sprintf(":no_entry: Approved by <@%s>; the pass was %s %s", r.DecidedBy, removedText(r), slackDate(r.RevokedAt))
		}
		return fmt.Sprintf(":no_entry: Approved by <@%s>; revoked by %s %s", r.DecidedBy, revokedBy(r), slackDate(r.RevokedAt))
	}
	return string(r.State)
}

// RevealBlocks renders the recipient's DM. It never holds the pass: the button opens a modal,
// which Slack keeps no history of.
func RevealBlocks(r *approvals.Request) []slack.Block {
	var intro string
	if r.RecipientIsRequester() {
		intro = fmt.Sprintf("Your request for a Temporary Access Pass for %s was approved by <@%s>. %s has no Slack account and could not be notified, so the pass comes to you to hand over.\n%s",
			targetText(r.Target), r.DecidedBy, upnText(r.Target.UPN), handOver(r))
	} else {
		intro = fmt.Sprintf("<@%s> asked for a Temporary Access Pass for you and <@%s> approved it. Use it to sign in without a password and set up a passkey, security key or the Authenticator app at %s.",
			r.Requester, r.DecidedBy, SecurityInfoURL)
		if r.Reason != "" {
			// On one line, as on the approval message: a reason cannot fake lines under it.
			intro += "\n*Reason given:* " + reasonText(r.Reason)
		}
	}
	blocks := []slack.Block{section(intro)}
	report := slack.NewButtonBlockElement(ActionReport, r.ID, plain("This wasn't me"))
	switch r.State {
	case approvals.Issued, approvals.Revealing:
		reveal := slack.NewButtonBlockElement(ActionReveal, r.ID, plain("Reveal pass")).WithStyle(slack.StylePrimary)
		elements := []slack.BlockElement{reveal}
		if !r.RecipientIsRequester() {
			elements = append(elements, report)
		}
		blocks = append(blocks,
			slack.NewActionBlock("reveal", elements...),
			note(fmt.Sprintf("%s pass, %s. It is shown once, only to you, and Slack keeps no copy. Did not expect it? Click *This wasn't me* and IT is alerted.",
				capitalize(usage(r)), validity(r))))
	case approvals.Revealed:
		blocks = append(blocks, note(fmt.Sprintf(":lock: Revealed %s. It cannot be shown again.", slackDate(r.RevealedAt))))
		if !r.RecipientIsRequester() && r.ReportedAt.IsZero() {
			blocks = append(blocks, slack.NewActionBlock("report", report))
		}
	case approvals.Revoked:
		how := "revoked by " + revokedBy(r)
		if r.RemovedInEntraBy != "" {
			how = removedText(r)
		}
		blocks = append(blocks, note(fmt.Sprintf(":no_entry: This pass was %s %s and can no longer be used or revealed.", how, slackDate(r.RevokedAt))))
	default:
		blocks = append(blocks, note(outcomeText(r)))
	}
	if !r.ReportedAt.IsZero() {
		blocks = append(blocks, note(":rotating_light: You reported this pass; IT has been alerted."))
	}
	if !r.RegisteredAt.IsZero() {
		blocks = append(blocks, registeredNote(r))
	}
	return blocks
}

// handOver says how a requester passes a pass on to a person who is not in Slack (a new hire
// before day one, usually): the pass is shown once, so it is revealed only when the person is
// there to hear it, and said aloud, never written down where it stays.
func handOver(r *approvals.Request) string {
	when := ""
	if scheduled(r) {
		when = fmt.Sprintf(" at %s, when the pass starts working", slackDate(r.PassStartsAt))
	}
	return fmt.Sprintf("*How to hand it over:* click *Reveal pass* only when %s is with you, on the phone or on a video call%s, and read the pass out. Never email, paste or photograph it. It works %s, %s.",
		upnText(r.Target.UPN), when, usageWords(r), validity(r))
}

// usageWords says how often a pass works, for a sentence.
func usageWords(r *approvals.Request) string {
	if r.UsableOnce {
		return "for one sign-in"
	}
	return "for any number of sign-ins"
}

// RevealText is the notification text of the recipient's DM.
func RevealText(r *approvals.Request) string {
	switch r.State {
	case approvals.Revealed:
		return "Your Temporary Access Pass was revealed."
	case approvals.Revoked:
		if r.RemovedInEntraBy != "" {
			return "Your Temporary Access Pass was removed in Entra ID."
		}
		return "Your Temporary Access Pass was revoked."
	}
	return "You have a Temporary Access Pass to reveal."
}

func privilegeText(p approvals.Privileges) string {
	var parts []string
	if len(p.Roles) > 0 {
		parts = append(parts, "roles: "+strings.Join(p.Roles, ", "))
	}
	if len(p.Groups) > 0 {
		parts = append(parts, "protected groups: "+strings.Join(p.Groups, ", "))
	}
	return strings.Join(parts, "; ")
}

// AlertBlocks renders a security alarm for the audit channel: a pass someone else may have.
func AlertBlocks(r *approvals.Request, what string) []slack.Block {
	blocks := []slack.Block{
		slack.NewHeaderBlock(plain(":rotating_light: Temporary Access Pass alert")),
		section(fmt.Sprintf("%s\n*For:* %s\n*Requested by:* <@%s> · *approved by:* <@%s>\n*Request:* `%s`",
			what, targetText(r.Target), r.Requester, r.DecidedBy, r.ID)),
	}
	switch r.State {
	case approvals.Issued, approvals.Revealing, approvals.Revealed:
		blocks = append(blocks, slack.NewActionBlock("revoke",
			slack.NewButtonBlockElement(ActionRevoke, r.ID, plain("Revoke")).WithStyle(slack.StyleDanger)))
	default:
		blocks = append(blocks, note(outcomeText(r)))
	}
	return blocks
}

// PassModal shows the pass itself, its times in each reader's own time zone as Slack renders
// them; PassModalIn shows them in a known zone. Modals leave no history in Slack.
func PassModal(r *approvals.Request, code string) slack.ModalViewRequest {
	return PassModalIn(r, code, nil)
}

// MessageModal is a modal with one message, for the outcome of a reveal click. The message is
// clipped to Slack's limit: it is made of sentences that may quote user text.
func MessageModal(title, text string) slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type:   slack.VTModal,
		Title:  plain(title),
		Close:  plain("Close"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{section(clip(text, maxText))}},
	}
}

// confirmation tells a requester their request is on its way to the approvers.
func confirmation(r *approvals.Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Your request for a %s, %s Temporary Access Pass for %s was sent to the approvers (request `%s`).",
		approvals.FormatDuration(r.Lifetime), usage(r), targetText(r.Target), r.ID)
	if !r.StartsAt.IsZero() {
		fmt.Fprintf(&b, " Once approved, the pass starts working %s.", slackDate(r.StartsAt))
	}
	if r.RecipientIsRequester() {
		fmt.Fprintf(&b, " %s has no Slack account, so the pass will come to you once approved.", upnText(r.Target.UPN))
	} else {
		fmt.Fprintf(&b, " Once approved, <@%s> gets a DM to reveal it.", r.Recipient)
	}
	return b.String()
}

// requesterUpdate tells a requester how their request ended.
func requesterUpdate(r *approvals.Request) string {
	who := targetText(r.Target)
	switch r.State {
	case approvals.Issued:
		if r.RecipientIsRequester() {
			return fmt.Sprintf("Your request for %s was approved by <@%s>; the pass is in the message below.", who, r.DecidedBy)
		}
		return fmt.Sprintf("Your request for %s was approved by <@%s>. <@%s> got a DM to reveal the pass; it is %s.", who, r.DecidedBy, r.Recipient, validity(r))
	case approvals.Denied:
		return fmt.Sprintf("Your request for a Temporary Access Pass for %s was denied by <@%s>.", who, r.DecidedBy)
	case approvals.Failed:
		if r.PassID != "" {
			// The pass was made; what failed came after (storing, showing, keeping it).
			return fmt.Sprintf("Your request for %s was approved by <@%s>, but the pass did not reach <@%s>: %s", who, r.DecidedBy, r.Recipient, detailText(r.Failure))
		}
		return fmt.Sprintf("Your request for %s was approved by <@%s>, but the pass could not be made: %s", who, r.DecidedBy, detailText(r.Failure))
	case approvals.Revealed:
		return fmt.Sprintf("<@%s> revealed the pass for %s %s.", r.Recipient, who, slackDate(r.RevealedAt))
	case approvals.Revoked:
		if r.RemovedInEntraBy != "" {
			return fmt.Sprintf("The pass for %s was %s; it can no longer be used or revealed.", who, removedText(r))
		}
		return fmt.Sprintf("The pass for %s was revoked by %s.", who, revokedBy(r))
	case approvals.Cancelled:
		if r.CancelledBy == r.Requester {
			return fmt.Sprintf("You withdrew your request for %s; the approvers can no longer approve it.", who)
		}
		return fmt.Sprintf("Your request for %s was cancelled: %s", who, detailText(r.Failure))
	case approvals.Expired:
		if r.DecidedBy != "" {
			return fmt.Sprintf("The pass for %s expired before it was revealed. Ask again with /tap if it is still needed.", who)
		}
		return fmt.Sprintf("Your request for %s expired without a decision. Ask again with /tap if it is still needed.", who)
	}
	return fmt.Sprintf("Your request for %s is now %s.", who, r.State)
}

// approverUpdate tells the approver of a request that failed after their click what happened.
func approverUpdate(r *approvals.Request) string {
	text := fmt.Sprintf("The Temporary Access Pass you approved for %s failed: %s", targetText(r.Target), detailText(r.Failure))
	if r.Resubmitted != "" {
		text += fmt.Sprintf(" Approve it again in <#%s> (request `%s`).", r.ApprovalMessage.Channel, r.Resubmitted)
	}
	return text
}

// userMessage is what a person reads for an error: its sentence and, for a refusal, who may do
// what was refused. A sentence may quote what was typed or a UPN, so both keep to a share.
func userMessage(err error) string {
	if wait, throttled := slackrate.Throttled(err); throttled && approvals.ErrorCode(err) == "" {
		return fmt.Sprintf("Slack is limiting how fast tapbot may work right now, so nothing was done. Try again in %s.", roundWait(wait))
	}
	msg := clip(escape(approvals.UserMessage(err)), messageShare)
	if who := approvals.WhoMay(err); len(who) > 0 {
		msg += " Who can: " + clip(mentions(who), whoShare) + "."
	}
	return msg
}

// mentions renders user and user group IDs as Slack mentions.
func mentions(ids []string) string {
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		if strings.HasPrefix(id, "S") {
			parts = append(parts, "<!subteam^"+id+">")
		} else {
			parts = append(parts, "<@"+id+">")
		}
	}
	return strings.Join(parts, ", ")
}

// AuditLine renders an audit event as one line for the audit channel. User text is escaped.
func AuditLine(e approvals.Event) string {
	actor := "tapbot"
	if e.Actor != "" {
		actor = "<@" + e.Actor + ">"
	}
	usage := "multi-use"
	if e.UsableOnce {
		usage = "one-time"
	}
	if e.RequestID == "" {
		// An event about no request (an onboarding prompt): who, what, why.
		line := fmt.Sprintf("`%s` %s · %s", e.Event, actor, upnText(e.Target))
		if e.Reason != "" {
			line += " · " + reasonText(e.Reason)
		}
		if e.Detail != "" {
			line += " · " + detailText(e.Detail)
		}
		return line
	}
	line := fmt.Sprintf("`%s` %s · %s · %s (%s, %s) · request `%s`", e.Event, actor, upnText(e.Target), reasonText(e.Reason), e.Lifetime, usage, e.RequestID)
	if e.Detail != "" {
		line += " · " + detailText(e.Detail)
	}
	return line
}
