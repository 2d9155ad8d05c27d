package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/slackrate"
)

// Action IDs of App Home's buttons. Approve and Deny in App Home have their own IDs, so a click
// from a Home tab can never be taken for a click on an approval message, and the reverse.
const (
	ActionHomeApprove = "tap_home_approve"
	ActionHomeDeny    = "tap_home_deny"
	// CallbackHome marks tapbot's Home tab.
	CallbackHome = "tap_home"
)

// Events are the Events API events tapbot handles; manifest.yaml subscribes to exactly these.
var Events = []string{string(slackevents.AppHomeOpened)}

// Limits that keep the Home tab within Slack's 100 blocks.
const (
	homeMaxDecidable = 15
	homeMaxMine      = 5
	homeMaxDecisions = 10
)

// homeOwner is the Home tab's private metadata: whom tapbot published it for. A click is taken
// only from the Home tab of the person clicking.
func homeOwner(user string) string { return "home:" + user }

// onHomeOpened publishes a person's Home tab when they open it.
func (b *Bot) onHomeOpened(evt *socketmode.Event, _ *socketmode.Client) {
	if !b.ackOnce(evt) {
		return
	}
	outer, ok := evt.Data.(slackevents.EventsAPIEvent)
	if !ok {
		return
	}
	e, ok := outer.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent)
	if !ok || e.User == "" || e.Tab != "home" {
		return // the Messages tab needs nothing from tapbot
	}
	ctx, cancel := b.work()
	defer cancel()
	b.publishHome(ctx, e.User, "")
}

// publishHome renders and publishes user's Home tab, with notice on top (the outcome of their
// last click) when not empty. What cannot be read is said in the tab rather than left out.
func (b *Bot) publishHome(ctx context.Context, user, notice string) {
	ctx, cancel := b.patient(ctx) // after a decision that waited on Slack, the handler's time may be up
	defer cancel()
	var problems []error
	pending, err := b.svc.PendingFor(ctx, user)
	if err != nil {
		problems = append(problems, err)
	}
	mine, err := b.svc.PendingBy(ctx, user)
	if err != nil {
		problems = append(problems, err)
	}
	decisions, err := b.svc.DecisionsBy(ctx, user, homeMaxDecisions)
	if err != nil {
		problems = append(problems, err)
	}
	cohort, err := b.svc.Cohort(ctx, user)
	if err != nil {
		problems = append(problems, err)
	}
	if err := errors.Join(problems...); err != nil {
		b.log.Error("read what App Home shows", "user", user, "err", err)
		warn := ":warning: Some of this could not be loaded: " + userMessage(problems[0])
		if notice != "" {
			notice += "\n" + warn
		} else {
			notice = warn
		}
	}
	view := HomeViewWith(user, notice, pending, mine, decisions, b.svc.ApproversFor, cohort)
	if _, err := b.api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user, View: view}); err != nil {
		b.log.Error("publish App Home", "user", user, "err", err)
	}
}

// onHomeDecision takes Approve or Deny from a Home tab through the same service calls, with
// the same checks, as a click on the approval message; the click's origin is the clicker's own
// App Home (approvals.FromHome). The approval message, the requester and the clicker's Home tab
// are then brought up to date.
func (b *Bot) onHomeDecision(approve bool) socketmode.SocketmodeHandlerFunc {
	return func(evt *socketmode.Event, _ *socketmode.Client) {
		if !b.ackOnce(evt) {
			return
		}
		cb, id, ok := b.homeClicked(evt)
		if !ok {
			return
		}
		ctx, cancel := b.work()
		defer cancel()
		ctx = slackrate.With(ctx, slackrate.Interactive)
		release, err := b.takeDecisionWorker(ctx)
		if err != nil {
			b.answer(b.lastWords(ctx), cb, busyText) // a Home tab has no channel: the notice goes on the tab
			return
		}
		defer release()
		clicker := cb.User.ID
		var r *approvals.Request
		if approve {
			start := time.Now()
			r, err = b.svc.Approve(ctx, id, clicker, approvals.FromHome(clicker))
			b.metrics.IssueDuration.Observe(time.Since(start).Seconds())
		} else {
			r, err = b.svc.Deny(ctx, id, clicker, approvals.FromHome(clicker))
		}
		release() // Slack's part may queue behind its limits and holds no worker
		endedNow := err == nil || errors.Is(err, approvals.ErrIssueFailed) || errors.Is(err, approvals.ErrExpiredNow)
		notice := ""
		if err != nil {
			if approvals.ErrorCode(err) == "" {
				b.log.Error("decision failed", "request_id", id, "clicker", clicker, "approve", approve, "err", err, "from", "app_home")
			}
			notice = ":warning: " + userMessage(err)
		}
		if r != nil && endedNow {
			b.metrics.Requests.WithLabelValues(string(r.State)).Inc()
			if r.State == approvals.Issued {
				b.deliver(ctx, r, nil)
			} else {
				b.updateApproval(ctx, r)
				b.tellRequester(ctx, r)
			}
			if err == nil {
				notice = fmt.Sprintf("%s You %s the request for %s.", map[bool]string{true: ":white_check_mark:", false: ":no_entry_sign:"}[approve],
					map[bool]string{true: "approved", false: "denied"}[approve], targetText(r.Target))
			}
		}
		b.publishHome(ctx, clicker, notice)
	}
}

// homeClicked reads a click in a Home tab. It is taken only from a view of type home that
// tapbot published for the person clicking and that shows this very button with this request
// ID; anything else is refused here, with a log line and no effect. The service then checks
// everything it checks for a click on the approval message.
func (b *Bot) homeClicked(evt *socketmode.Event) (slack.InteractionCallback, string, bool) {
	cb, id, ok := b.clicked(evt)
	if !ok {
		return cb, "", false
	}
	action := cb.ActionCallback.BlockActions[0].ActionID
	var why string
	switch {
	case cb.Container.Type != "view" || cb.View.Type != slack.VTHomeTab || cb.View.ID == "" || cb.Container.ViewID != cb.View.ID:
		why = "it does not come from a Home tab"
	case cb.View.PrivateMetadata != homeOwner(cb.User.ID):
		why = "the Home tab was not published for the person clicking"
	case !viewShows(cb.View.Blocks, action, id):
		why = "the Home tab does not show that button for that request"
	default:
		return cb, id, true
	}
	b.log.Warn("refused a Home tab click: "+why, "user", cb.User.ID, "action_id", action, "request_id", id)
	return cb, "", false
}

// viewShows reports whether blocks hold a button with actionID and value.
func viewShows(blocks slack.Blocks, actionID, value string) bool {
	for _, blk := range blocks.BlockSet {
		var elems []slack.BlockElement
		switch b := blk.(type) {
		case *slack.ActionBlock:
			if b.Elements != nil {
				elems = b.Elements.ElementSet
			}
		case *slack.SectionBlock:
			if b.Accessory != nil && b.Accessory.ButtonElement != nil {
				elems = []slack.BlockElement{b.Accessory.ButtonElement}
			}
		}
		for _, e := range elems {
			if btn, ok := e.(*slack.ButtonBlockElement); ok && btn.ActionID == actionID && btn.Value == value {
				return true
			}
		}
	}
	return false
}

// HomeView renders a person's Home tab: what waits for their decision and why it is theirs to
// decide, their own requests still waiting (with a reminder button), and their recent decisions.
// approversFor names who may decide a request, for the requester's view.
func HomeView(user, notice string, pending []approvals.Decidable, mine []*approvals.Request, decisions []approvals.Event,
	approversFor func(*approvals.Request) []string) slack.HomeTabViewRequest {
	return HomeViewWith(user, notice, pending, mine, decisions, approversFor, nil)
}

// homeMaxCohort is how many new hires the Starting soon section lists.
const homeMaxCohort = 20

// HomeViewWith is HomeView with the Starting soon section of new hires (TAP_ONBOARDING), shown
// when cohort is not empty.
func HomeViewWith(user, notice string, pending []approvals.Decidable, mine []*approvals.Request, decisions []approvals.Event,
	approversFor func(*approvals.Request) []string, cohort []approvals.CohortEntry) slack.HomeTabViewRequest {
	blocks := []slack.Block{slack.NewHeaderBlock(plain("Temporary Access Passes"))}
	if notice != "" {
		// A notice is made of answers that each quote user text: it is clipped as a whole.
		blocks = append(blocks, section(clip(notice, maxText)))
	}

	blocks = append(blocks, section(fmt.Sprintf("*Waiting for your decision* (%d)", len(pending))))
	if len(pending) == 0 {
		blocks = append(blocks, note("Nothing waits for you. Requests you may decide appear here and in the approval channel."))
	}
	for i, d := range pending {
		if i == homeMaxDecidable {
			blocks = append(blocks, note(fmt.Sprintf("…and %d more; see the approval channel.", len(pending)-i)))
			break
		}
		r := d.Request
		text := fmt.Sprintf("*For:* %s\n*Requested by:* <@%s> %s\n*Lifetime:* %s, %s\n*Reason:* %s",
			targetText(r.Target), r.Requester, slackDate(r.CreatedAt), approvals.FormatDuration(r.Lifetime), usage(r), reasonText(r.Reason))
		if r.ReplacesActivePass {
			text += "\n:warning: This person already has an active pass; approving replaces it."
		}
		if r.RecipientIsRequester() {
			text += fmt.Sprintf("\n:information_source: No Slack account: the pass goes to <@%s> to hand over.", r.Requester)
		}
		blocks = append(blocks,
			section(text),
			note(":bust_in_silhouette: *Why you:* "+whyYou(r, d.Authority)),
			slack.NewActionBlock("decide_"+r.ID,
				slack.NewButtonBlockElement(ActionHomeApprove, r.ID, plain("Approve")).WithStyle(slack.StylePrimary),
				slack.NewButtonBlockElement(ActionHomeDeny, r.ID, plain("Deny")).WithStyle(slack.StyleDanger)),
			slack.NewDividerBlock())
	}

	if len(mine) > 0 {
		blocks = append(blocks, section(fmt.Sprintf("*Your requests waiting for approval* (%d)", len(mine))))
		for i, r := range mine {
			if i == homeMaxMine {
				blocks = append(blocks, note(fmt.Sprintf("…and %d more.", len(mine)-i)))
				break
			}
			text := fmt.Sprintf("%s · %s, %s · asked %s · request `%s`", targetText(r.Target),
				approvals.FormatDuration(r.Lifetime), usage(r), slackDate(r.CreatedAt), r.ID)
			if r.Manager != "" {
				text += fmt.Sprintf("\nAsked first: <@%s>, the manager in Entra ID.", r.Manager)
			} else if who := approversFor(r); len(who) > 0 {
				text += "\nWho can decide: " + clip(mentions(who), whoShare) + "."
			}
			if r.RequesterRemindedAt.IsZero() {
				blocks = append(blocks, slack.NewSectionBlock(mrkdwn(text), nil,
					slack.NewAccessory(slack.NewButtonBlockElement(ActionRemind, r.ID, plain("Remind approvers")))))
			} else {
				blocks = append(blocks, section(text), note(fmt.Sprintf(":bell: You reminded the approvers %s.", slackDate(r.RequesterRemindedAt))))
			}
		}
	}

	if len(decisions) > 0 {
		const heading = "*Your recent decisions*"
		// The decisions share one section: each line keeps to its share of it. Only a UPN that
		// escaping grew past any real one makes a line that long.
		share := (maxText-len(heading))/len(decisions) - 1
		lines := make([]string, 0, len(decisions))
		for _, e := range decisions {
			verb := ":white_check_mark: Approved"
			if e.Event == approvals.EventDenied {
				verb = ":no_entry_sign: Denied"
			}
			lines = append(lines, clip(fmt.Sprintf("%s %s for %s · asked by <@%s> · %s · `%s`",
				verb, slackDate(e.Time), upnText(e.Target), e.Requester, escape(e.Lifetime), e.RequestID), share))
		}
		blocks = append(blocks, section(heading+"\n"+strings.Join(lines, "\n")))
	}
	if len(cohort) > 0 {
		blocks = append(blocks, cohortBlock(cohort))
	}
	blocks = append(blocks, note("Open this tab again to refresh it. Ask for a pass with `/tap`."))
	return slack.HomeTabViewRequest{
		Type:            slack.VTHomeTab,
		CallbackID:      CallbackHome,
		PrivateMetadata: homeOwner(user),
		Blocks:          slack.Blocks{BlockSet: blocks},
	}
}

// whyYou says which rule makes the viewer an approver of r.
func whyYou(r *approvals.Request, a approvals.Authority) string {
	switch {
	case a.Manager:
		return fmt.Sprintf("you are the manager of %s in Entra ID, who is asked first (TAP_ROUTE_TO_MANAGER).", upnText(r.Target.UPN))
	case a.Protected && a.Group != "":
		return fmt.Sprintf("this is a privileged account (%s), and you are in <!subteam^%s>, a protected approver group (TAP_PROTECTED_APPROVERS).",
			detailText(privilegeText(r.Privileged)), a.Group)
	case a.Protected:
		return fmt.Sprintf("this is a privileged account (%s), and you are a protected approver (TAP_PROTECTED_APPROVERS).",
			detailText(privilegeText(r.Privileged)))
	case a.Group != "":
		return fmt.Sprintf("you are in <!subteam^%s>, which is listed in TAP_APPROVERS.", a.Group)
	}
	return "you are listed in TAP_APPROVERS."
}

// cohortBlock is the Starting soon section: one line per new hire, upcoming first, each within
// its share of the section. The stage and the day come first, so a clipped name never hides them.
func cohortBlock(cohort []approvals.CohortEntry) slack.Block {
	const heading = "*Starting soon*"
	shown := cohort[:min(len(cohort), homeMaxCohort)]
	share := (maxText-len(heading)-40)/len(shown) - 1
	lines := make([]string, 0, len(shown)+1)
	for _, e := range shown {
		who := upnText(e.UPN)
		if e.DisplayName != "" {
			who = nameText(e.DisplayName) + " (" + who + ")"
		}
		manager := "no manager in Slack"
		switch {
		case e.ManagerSlackID != "":
			manager = "manager <@" + e.ManagerSlackID + ">"
		case e.Stage == approvals.StageNotAsked:
			manager = "not asked yet"
		}
		head := fmt.Sprintf("%s *%s* · starts %s", stageIcon(e.Stage), e.Stage, e.FirstDay)
		if e.RequestID != "" {
			head += " · `" + e.RequestID + "`"
		}
		if e.Disabled {
			head += " · account disabled"
		}
		tail := " · " + manager + " · " + who
		lines = append(lines, head+clip(tail, max(share-utf8.RuneCountInString(head), 1)))
	}
	if more := len(cohort) - len(shown); more > 0 {
		lines = append(lines, fmt.Sprintf("…and %d more.", more))
	}
	return section(heading + "\n" + strings.Join(lines, "\n"))
}

// stageIcon marks a hire's stage at a glance.
func stageIcon(s approvals.CohortStage) string {
	switch s {
	case approvals.StageRegistered:
		return ":white_check_mark:"
	case approvals.StageRevealed, approvals.StageIssued, approvals.StageApproved, approvals.StageRequested:
		return ":hourglass_flowing_sand:"
	case approvals.StageNotNeeded:
		return ":heavy_minus_sign:"
	case approvals.StageEnded, approvals.StageMissed:
		return ":warning:"
	}
	return ":grey_question:"
}
