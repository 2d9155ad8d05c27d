package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/redis/go-redis/v9"
	"github.com/slack-go/slack"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/config"
	"github.com/tapbot/tapbot/graph"
	"github.com/tapbot/tapbot/redisstore"
	"github.com/tapbot/tapbot/slackrate"
)

// SlackScope is a bot token scope tapbot needs, with what it is for, so a missing one can be
// explained in the words of the person who has to add it.
type SlackScope struct {
	Name string
	Why  string
}

// SlackBotScopes are the bot token scopes tapbot needs. It is the one list in Go; manifest.yaml
// must ask for exactly these (a test checks it), and tapbot doctor compares them with what Slack
// says the token was granted.
var SlackBotScopes = []SlackScope{
	{"commands", "the /tap slash command"},
	{"chat:write", "post and update approval messages and DMs"},
	{"im:write", "open the DM with the recipient"},
	{"users:read", "read profiles and resolve approvers"},
	{"users:read.email", "match Slack users to Entra ID accounts by email"},
	{"usergroups:read", "resolve approver user groups"},
	// conversations.info, with which doctor checks that the bot is in the approval and audit
	// channels, needs channels:read for a public channel and groups:read for a private one.
	{"channels:read", "check that the bot is in a public approval or audit channel"},
	{"groups:read", "check that the bot is in a private approval or audit channel"},
}

// neededGraphPermissions are the permissions of graph.Permissions this configuration uses whose
// grant the token check reads. AuditLog.Read.All is left to the Tenant watch check, which reads
// the audit log itself and can say what lacking it means (only the watcher is off), instead of
// failing the whole permission line.
func neededGraphPermissions(cfg config.Config) []graph.Permission {
	return slices.DeleteFunc(slices.Clone(graph.Permissions), func(p graph.Permission) bool {
		return (p.Name == graph.AuthMethodsPermission && cfg.WatchInterval < 0) || p.Name == graph.AuditLogPermission
	})
}

// doctorTimeout bounds each network check, so a dependency that does not answer costs one line
// after a few seconds rather than a hung doctor.
const doctorTimeout = 20 * time.Second

// doctorKeyTTL is how long the key written to prove Redis is writable would live if deleting it
// failed: doctor changes nothing that outlasts it.
const doctorKeyTTL = 30 * time.Second

// runDoctor is `tapbot doctor`: it checks the configuration and every connection the bot makes
// and prints one line per check, with the fix for each failure. It reads the same configuration
// as the bot (getenv for tapbot's variables; azidentity reads AZURE_* from the process
// environment, as it does for the bot) and changes nothing. It returns nil only when every check
// passed.
func runDoctor(ctx context.Context, getenv func(string) string, out io.Writer) error {
	// go-redis logs every failed dial on stderr; the Store line already says what failed and
	// what to do, so in this one-shot process its logger stays quiet. (Only here: the logger is
	// process-wide, and in-process tests run bots beside doctor.)
	redisstore.LogTo(slog.New(slog.DiscardHandler))
	return runDoctorWith(ctx, getenv, out, testHooks.Transport)
}

// runDoctorWith is runDoctor with the transport for outbound HTTPS (nil: the default), the seam
// the tests use to trust their fakes' certificate.
func runDoctorWith(ctx context.Context, getenv func(string) string, out io.Writer, transport http.RoundTripper) error {
	d := &doctor{list: newChecklist(out, rawSecrets(getenv)), transport: transport}
	d.run(ctx, getenv)
	return d.list.finish()
}

// Check names, in the order they are printed.
const (
	chkConfig       = "Configuration"
	chkSlackToken   = "Slack bot token"
	chkSlackScopes  = "Slack bot scopes"
	chkSocket       = "Slack socket mode"
	chkApproval     = "Approval channel"
	chkAudit        = "Audit channel"
	chkApprovers    = "Approvers"
	chkRequesters   = "Requesters"
	chkProtected    = "Protected approvers"
	chkGraphToken   = "Graph sign-in"
	chkGraphPerms   = "Graph permissions"
	chkPolicy       = "TAP policy"
	chkTenantWatch  = "Tenant watch"
	chkHires        = "New hires"
	chkStore        = "Store"
	chkRedisWrite   = "Redis writable"
	chkEncryptionKy = "Encryption key"
)

type doctor struct {
	list      *checklist
	transport http.RoundTripper
	cfg       config.Config
	// broken are the variables the configuration check refused (a SLACK_BOT_TOKEN_FILE's
	// problem counts as SLACK_BOT_TOKEN's); a check that reads one is skipped, every other runs.
	broken map[string]bool

	// Filled by the Slack token check for the checks that depend on it.
	api     *slack.Client
	botName string
	// granted is the bot token's scopes as Slack reported them; nil when Slack did not say.
	granted []string
}

func (d *doctor) run(ctx context.Context, getenv func(string) string) {
	// Load returns every value it could read; the checks that read none of the wrong ones run.
	cfg, err := config.Load(getenv)
	d.cfg, d.broken = cfg, map[string]bool{}
	for _, p := range config.Problems(err) {
		d.list.fail(chkConfig, p.Error(), "set it in the environment or in ./.env (see .env.example and README.md)")
		d.broken[strings.TrimSuffix(p.Var, "_FILE")] = true
	}
	if err == nil {
		d.list.pass(chkConfig, fmt.Sprintf("read (approval channel %s, %s store)", cfg.ApprovalChannel, storeKind(cfg)))
	}

	d.checkSlack(ctx)
	d.checkGraph(ctx)
	d.checkStore(ctx)
	d.checkEncryptionKey()
}

// skipBroken skips the check name when one of the variables it reads was refused, and says so.
func (d *doctor) skipBroken(name string, vars ...string) bool {
	for _, v := range vars {
		if d.broken[v] {
			d.list.skip(name, "needs a valid "+v+" (see "+chkConfig+")")
			return true
		}
	}
	return false
}

// ---- Slack ----

// scopeRecorder is the Slack client's HTTP client: it keeps the X-OAuth-Scopes header of the
// auth.test answer, where Slack lists the token's scopes; slack-go does not expose headers.
type scopeRecorder struct {
	client *http.Client

	mu      sync.Mutex
	scopes  string
	present bool
}

func (r *scopeRecorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := r.client.Do(req)
	if err == nil && strings.HasSuffix(req.URL.Path, "/auth.test") {
		r.mu.Lock()
		r.scopes, r.present = resp.Header.Get("X-OAuth-Scopes"), len(resp.Header.Values("X-OAuth-Scopes")) > 0
		r.mu.Unlock()
	}
	return resp, err
}

func (r *scopeRecorder) granted() ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.present {
		return nil, false
	}
	var out []string
	for _, s := range strings.Split(r.scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, true
}

func (d *doctor) checkSlack(ctx context.Context) {
	cfg := d.cfg
	transport := d.transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	rec := &scopeRecorder{client: &http.Client{Transport: transport, Timeout: doctorTimeout}}
	// Doctor's calls count against the same Slack limits as the running replicas', but doctor
	// paces only itself: a 429 is waited out within each check's time, and one that would
	// outlast it is named as such, not as a broken token.
	api := slack.New(cfg.SlackBotToken, slack.OptionAppLevelToken(cfg.SlackAppToken),
		slack.OptionAPIURL(cfg.SlackAPIURL), slack.OptionHTTPClient(slackrate.New(slackrate.Options{HTTP: rec})))

	tokenOK := !d.skipBroken(chkSlackToken, "SLACK_BOT_TOKEN", "SLACK_API_URL") && d.checkSlackToken(ctx, api)
	if tokenOK {
		d.checkSlackScopes(rec)
	} else {
		d.list.skip(chkSlackScopes, "needs an accepted bot token (see "+chkSlackToken+")")
	}
	if !d.skipBroken(chkSocket, "SLACK_APP_TOKEN", "SLACK_API_URL") {
		d.checkSocketMode(ctx, api)
	}

	channels := []struct{ name, variable, id string }{
		{chkApproval, "TAP_APPROVAL_CHANNEL", cfg.ApprovalChannel},
		{chkAudit, "TAP_AUDIT_CHANNEL", cfg.AuditChannel},
	}
	for _, c := range channels {
		switch {
		case d.skipBroken(c.name+" ("+c.variable+")", c.variable):
		case c.id == "" && c.variable == "TAP_AUDIT_CHANNEL":
			d.list.pass(c.name, "TAP_AUDIT_CHANNEL is not set: audit events go to the log (and Redis), alerts to the approval channel")
		case !tokenOK:
			d.list.skip(c.name, "needs an accepted bot token (see "+chkSlackToken+")")
		default:
			d.checkChannel(ctx, c.name, c.variable, c.id)
		}
	}

	people := []struct {
		name, variable string
		ids            []string
		unset          string
	}{
		{chkApprovers, "TAP_APPROVERS", cfg.Approvers, ""},
		{chkRequesters, "TAP_REQUESTERS", cfg.Requesters, "TAP_REQUESTERS is not set: anyone in the workspace may request a pass"},
		{chkProtected, "TAP_PROTECTED_APPROVERS", cfg.ProtectedApprovers, "TAP_PROTECTED_APPROVERS is not set: requests for privileged targets are refused"},
	}
	for _, p := range people {
		switch {
		case d.skipBroken(p.name+" ("+p.variable+")", p.variable):
		case len(p.ids) == 0:
			d.list.pass(p.name, p.unset)
		case !tokenOK:
			d.list.skip(p.name, "needs an accepted bot token (see "+chkSlackToken+")")
		default:
			d.checkPeople(ctx, p.name, p.variable, p.ids)
		}
	}
}

func (d *doctor) checkSlackToken(ctx context.Context, api *slack.Client) bool {
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	auth, err := api.AuthTestContext(ctx)
	if err != nil {
		switch code := slackCode(err); code {
		case "invalid_auth", "not_authed", "not_allowed_token_type":
			d.list.fail(chkSlackToken, "Slack does not accept SLACK_BOT_TOKEN ("+code+")",
				"copy the Bot User OAuth Token (xoxb-…) from your Slack app's OAuth & Permissions page into SLACK_BOT_TOKEN")
		case "token_revoked", "account_inactive", "token_expired", "app_uninstalled":
			d.list.fail(chkSlackToken, "Slack says the bot token is no longer valid ("+code+")",
				"reinstall the app (Install App in your Slack app's settings) and put the new Bot User OAuth Token in SLACK_BOT_TOKEN")
		case "":
			d.list.fail(chkSlackToken, "cannot reach Slack at "+d.cfg.SlackAPIURL+": "+oneLine(err),
				"check this host's network access and proxy, and SLACK_API_URL (unset means https://slack.com/api/)")
		default:
			d.list.fail(chkSlackToken, "Slack refused auth.test ("+code+")",
				"check SLACK_BOT_TOKEN and SLACK_API_URL; see https://api.slack.com/methods/auth.test for "+code)
		}
		return false
	}
	d.api, d.botName = api, auth.User
	d.list.pass(chkSlackToken, fmt.Sprintf("accepted for workspace %s (bot @%s)", auth.Team, auth.User))
	return true
}

func (d *doctor) checkSlackScopes(rec *scopeRecorder) {
	granted, ok := rec.granted()
	if !ok {
		d.list.fail(chkSlackScopes, "Slack's answer did not list the token's scopes (no X-OAuth-Scopes header)",
			"if SLACK_API_URL points at a proxy, let it pass Slack's response headers; otherwise compare OAuth & Permissions → Bot Token Scopes with manifest.yaml by hand")
		return
	}
	d.granted = granted
	var missing, extra []string
	for _, s := range SlackBotScopes {
		if !slices.Contains(granted, s.Name) {
			missing = append(missing, s.Name+" ("+s.Why+")")
		}
	}
	for _, g := range granted {
		if !slices.ContainsFunc(SlackBotScopes, func(s SlackScope) bool { return s.Name == g }) {
			extra = append(extra, g)
		}
	}
	if len(missing) > 0 {
		d.list.fail(chkSlackScopes, "missing "+strings.Join(missing, ", "),
			"add them under OAuth & Permissions → Bot Token Scopes (or paste manifest.yaml again) and reinstall the app")
		return
	}
	detail := fmt.Sprintf("all %d present", len(SlackBotScopes))
	if len(extra) > 0 {
		detail += " (also granted, not needed by tapbot: " + strings.Join(extra, ", ") + ")"
	}
	d.list.pass(chkSlackScopes, detail)
}

// lacks reports whether Slack said the bot token does not have scope. When Slack did not say
// (no header), nothing is assumed missing and the calls themselves tell.
func (d *doctor) lacks(scope string) bool {
	return d.granted != nil && !slices.Contains(d.granted, scope)
}

func (d *doctor) checkSocketMode(ctx context.Context, api *slack.Client) {
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	// apps.connections.open only hands out a websocket URL; doctor does not connect to it, so
	// no Slack event is delivered to doctor instead of a running bot.
	_, _, err := api.StartSocketModeContext(ctx)
	if err == nil {
		d.list.pass(chkSocket, "the app-level token opens socket-mode connections (apps.connections.open; not connected)")
		return
	}
	if wait, throttled := slackrate.Throttled(err); throttled {
		d.list.fail(chkSocket, fmt.Sprintf("Slack is rate-limiting apps.connections.open for another %s", wait.Round(time.Second)),
			"it allows about one call a minute for the whole app, running replicas included: run doctor again in a minute")
		return
	}
	switch code := slackCode(err); code {
	case "invalid_auth", "not_authed":
		d.list.fail(chkSocket, "Slack does not accept SLACK_APP_TOKEN ("+code+")",
			"create an app-level token with the connections:write scope under Basic Information → App-Level Tokens and put it (xapp-…) in SLACK_APP_TOKEN")
	case "not_allowed_token_type":
		d.list.fail(chkSocket, "SLACK_APP_TOKEN is not an app-level token",
			"put the app-level token (xapp-…, Basic Information → App-Level Tokens) in SLACK_APP_TOKEN and the bot token in SLACK_BOT_TOKEN")
	case "missing_scope":
		d.list.fail(chkSocket, "SLACK_APP_TOKEN lacks connections:write",
			"create an app-level token with the connections:write scope under Basic Information → App-Level Tokens and put it in SLACK_APP_TOKEN")
	case "":
		d.list.fail(chkSocket, "cannot reach Slack at "+d.cfg.SlackAPIURL+": "+oneLine(err),
			"check this host's network access and proxy, and SLACK_API_URL")
	default:
		d.list.fail(chkSocket, "Slack refused apps.connections.open ("+code+")",
			"turn Socket Mode on (your Slack app's Settings → Socket Mode) and check SLACK_APP_TOKEN belongs to the same app as SLACK_BOT_TOKEN")
	}
}

func (d *doctor) checkChannel(ctx context.Context, name, variable, id string) {
	label := name + " (" + variable + ")"
	if d.lacks("channels:read") && d.lacks("groups:read") {
		d.list.skip(label, "needs channels:read or groups:read, which the bot token lacks (see "+chkSlackScopes+")")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	ch, err := d.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: id})
	invite := "/invite @" + d.botName + " in that channel"
	if err != nil {
		var se slack.SlackErrorResponse
		switch code := slackCode(err); {
		case code == "missing_scope" && errors.As(err, &se):
			d.list.skip(label, "needs "+se.Needed+", which the bot token lacks (see "+chkSlackScopes+")")
		case code == "channel_not_found":
			d.list.fail(label, "Slack shows the bot no channel "+id+": it does not exist, or it is private and the bot is not in it",
				"check "+variable+" (the ID at the bottom of the channel's details, like C0123ABCD) and "+invite)
		case code == "":
			d.list.fail(label, "cannot reach Slack: "+oneLine(err), "check this host's network access and proxy")
		default:
			d.list.fail(label, "Slack refused conversations.info for "+id+" ("+code+")", "check "+variable+" and "+invite)
		}
		return
	}
	where := "#" + ch.Name
	if ch.Name == "" {
		where = id
	}
	switch {
	case ch.IsArchived:
		d.list.fail(label, where+" ("+id+") is archived", "unarchive it, or create a new channel, "+invite+" and put its ID in "+variable)
	case !ch.IsMember:
		d.list.fail(label, "the bot is not in "+where+" ("+id+"), so it cannot post there", invite)
	default:
		kind := "public"
		if ch.IsPrivate {
			kind = "private"
		}
		d.list.pass(label, "the bot is in "+where+" ("+kind+")")
	}
}

// checkPeople resolves each user ID with users.info and each user group ID with
// usergroups.users.list, and names every one that does not resolve.
func (d *doctor) checkPeople(ctx context.Context, name, variable string, ids []string) {
	label := name + " (" + variable + ")"
	for _, id := range ids {
		scope := "users:read"
		if strings.HasPrefix(id, "S") {
			scope = "usergroups:read"
		}
		if d.lacks(scope) {
			d.list.skip(label, "needs "+scope+" to resolve "+id+", which the bot token lacks (see "+chkSlackScopes+")")
			return
		}
	}
	var found, problems []string
	for _, id := range ids {
		ok, text := d.resolve(ctx, id)
		if ok {
			found = append(found, text)
		} else {
			problems = append(problems, text)
		}
	}
	if len(problems) > 0 {
		d.list.fail(label, strings.Join(problems, "; "),
			"fix "+variable+": use member IDs (profile → ⋯ → Copy member ID, U…) and user group IDs (S…) of this workspace")
		return
	}
	d.list.pass(label, strings.Join(found, ", "))
}

// resolve looks one member ID up; the text describes it, or says why it does not resolve.
func (d *doctor) resolve(ctx context.Context, id string) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	if strings.HasPrefix(id, "S") {
		members, err := d.api.GetUserGroupMembersContext(ctx, id)
		switch code := slackCode(err); {
		case err == nil && len(members) == 1:
			return true, id + " (1 member)"
		case err == nil:
			return true, fmt.Sprintf("%s (%d members)", id, len(members))
		case code == "no_such_subteam" || code == "subteam_not_found":
			return false, id + " is not a user group in this workspace"
		case code == "":
			return false, id + " could not be checked: " + oneLine(err)
		default:
			return false, id + " could not be resolved (" + code + ")"
		}
	}
	u, err := d.api.GetUserInfoContext(ctx, id)
	switch code := slackCode(err); {
	case err == nil && u.Deleted:
		return false, id + " (@" + u.Name + ") is deactivated"
	case err == nil:
		return true, id + " (@" + u.Name + ")"
	case code == "user_not_found":
		return false, id + " is not a user in this workspace"
	case code == "":
		return false, id + " could not be checked: " + oneLine(err)
	default:
		return false, id + " could not be resolved (" + code + ")"
	}
}

// slackCode is Slack's error code, or "" when err is not an answer from Slack (the network, a
// timeout).
func slackCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return ""
}

// ---- Microsoft Graph ----

// tokenRecorder wraps the Graph credential to keep the access token it hands the Graph client,
// so doctor reads the permissions of exactly the token the bot would use (same credential, same
// national-cloud scope) without working the scope out itself.
type tokenRecorder struct {
	cred azcore.TokenCredential

	mu    sync.Mutex
	token string
}

func (t *tokenRecorder) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := t.cred.GetToken(ctx, opts)
	if err == nil {
		t.mu.Lock()
		t.token = tok.Token
		t.mu.Unlock()
	}
	return tok, err
}

func (t *tokenRecorder) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.token
}

func (d *doctor) checkGraph(ctx context.Context) {
	skipAll := func(why string) {
		d.list.skip(chkGraphPerms, why)
		d.list.skip(chkPolicy, why)
		d.list.skip(chkHires, why)
		d.list.skip(chkTenantWatch, why)
	}
	if d.skipBroken(chkGraphToken, "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_AUTHORITY_HOST",
		"GRAPH_BASE_URL", "TAP_GRAPH_CONCURRENCY", "TAP_GRAPH_TIMEOUT") {
		skipAll("needs a Graph token (see " + chkGraphToken + ")")
		return
	}
	cred, err := graph.NewCredential(d.transport)
	if err != nil {
		d.list.fail(chkGraphToken, oneLine(err),
			"set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or a certificate, workload or managed identity) as README.md says")
		skipAll("needs a Graph token (see " + chkGraphToken + ")")
		return
	}
	rec := &tokenRecorder{cred: cred}
	dir, err := graph.New(rec, graph.Options{BaseURL: d.cfg.GraphBaseURL, Transport: d.transport,
		Concurrency: d.cfg.GraphConcurrency, AttemptTimeout: d.cfg.GraphTimeout})
	if err != nil {
		d.list.fail(chkGraphToken, oneLine(err), "fix GRAPH_BASE_URL, or leave it unset for https://graph.microsoft.com/v1.0")
		skipAll("needs a Graph client (see " + chkGraphToken + ")")
		return
	}
	signCtx, cancel := context.WithTimeout(ctx, doctorTimeout)
	err = dir.CheckSignIn(signCtx)
	cancel()
	if err != nil {
		problem, fix := signInProblem(err)
		d.list.fail(chkGraphToken, problem, fix)
		skipAll("needs a Graph token (see " + chkGraphToken + ")")
		return
	}
	token := rec.last()
	d.list.secrets = append(d.list.secrets, token)
	d.list.pass(chkGraphToken, "Entra ID issued an access token for Microsoft Graph")

	if !d.skipBroken(chkGraphPerms, "TAP_WATCH_INTERVAL") {
		d.checkGraphPermissions(token)
	}

	d.checkPolicy(ctx, dir)
	switch {
	case d.skipBroken(chkTenantWatch, "TAP_TENANT_WATCH_INTERVAL"):
	case d.cfg.TenantWatchInterval < 0:
		d.list.pass(chkTenantWatch, "TAP_TENANT_WATCH_INTERVAL is off: tapbot does not read the audit log, so passes made outside tapbot are not raised")
	default:
		d.checkTenantWatch(ctx, dir)
	}
}

func (d *doctor) checkPolicy(ctx context.Context, dir *graph.Client) {
	polCtx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	p, err := dir.PassPolicy(polCtx)
	switch {
	case err != nil:
		d.list.fail(chkPolicy, "cannot read the Temporary Access Pass policy: "+graphProblem(err),
			"grant the app the Microsoft Graph application permission Policy.Read.AuthenticationMethod with admin consent (see "+chkGraphPerms+")")
	case !p.Enabled:
		d.list.fail(chkPolicy, "Temporary Access Pass is disabled in the tenant's authentication methods policy",
			"enable it in the Entra admin center → Protection → Authentication methods → Policies → Temporary Access Pass")
	default:
		detail := fmt.Sprintf("enabled; lifetimes %s to %s, default %s", approvals.FormatDuration(p.MinLifetime),
			approvals.FormatDuration(p.MaxLifetime), approvals.FormatDuration(p.DefaultLifetime))
		if p.OneTimeOnly {
			detail += "; one-time passes only"
		}
		if !d.broken["TAP_MAX_LIFETIME"] && d.cfg.MaxLifetime > p.MaxLifetime {
			detail += fmt.Sprintf("; TAP_MAX_LIFETIME %s is capped at the policy's %s",
				approvals.FormatDuration(d.cfg.MaxLifetime), approvals.FormatDuration(p.MaxLifetime))
		}
		d.list.pass(chkPolicy, detail)
	}
	d.checkHires(ctx, dir)
}

// checkHires runs the onboarding look-ahead's hire-date query (an advanced query) for the notice
// window and says how many people it finds, so an admin sees before the first prompt whether
// HR provisioning fills employeeHireDate.
func (d *doctor) checkHires(ctx context.Context, dir *graph.Client) {
	if d.skipBroken(chkHires, "TAP_ONBOARDING", "TAP_ONBOARDING_NOTICE", "TAP_ONBOARDING_START") {
		return
	}
	if !d.cfg.Onboarding {
		d.list.pass(chkHires, "TAP_ONBOARDING is off: tapbot does not ask managers about new hires")
		return
	}
	notice := d.cfg.OnboardingNotice
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	now := time.Now()
	hires, err := dir.UpcomingHires(ctx, now, now.Add(notice))
	if err != nil {
		fix := "check that Microsoft Graph is reachable and run tapbot doctor again"
		switch approvals.ErrorCode(err) {
		case approvals.Forbidden:
			fix = "grant the app the Microsoft Graph application permission User.Read.All with admin consent (see " + chkGraphPerms + ")"
		case approvals.Invalid:
			fix = "Graph refused the query itself: report it as a tapbot bug, with this line"
		}
		d.list.fail(chkHires, "cannot list users by hire date: "+graphProblem(err), fix)
		return
	}
	window := approvals.FormatDuration(notice)
	if len(hires) == 0 {
		some, err := dir.AnyHireDates(ctx)
		switch {
		case err != nil:
			d.list.pass(chkHires, fmt.Sprintf("the hire-date query works; nobody starts within %s", window))
		case !some:
			d.list.fail(chkHires, "no user in the tenant has a hire date (employeeHireDate), so tapbot would never ask about anyone",
				"have HR provisioning (Workday, SuccessFactors, an inbound SCIM app) fill employeeHireDate in Entra ID, or set TAP_ONBOARDING=off")
		default:
			d.list.pass(chkHires, fmt.Sprintf("the hire-date query works; nobody starts within %s", window))
		}
		return
	}
	d.list.pass(chkHires, fmt.Sprintf("%d %s within %s (the first on %s)", len(hires), plural(len(hires), "person starts", "people start"),
		window, earliest(hires).Format("2006-01-02")))
}

// earliest is the soonest hire date.
func earliest(hires []approvals.Hire) time.Time {
	first := hires[0].HireDate
	for _, h := range hires[1:] {
		if h.HireDate.Before(first) {
			first = h.HireDate
		}
	}
	return first
}

// plural picks the singular or plural wording for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// checkTenantWatch reads one page of Entra ID's audit log, as the tenant watcher does. Without
// AuditLog.Read.All only the watcher is off, so the line says that plainly: an admin who reads
// "permission missing" alone would fear more is broken.
func (d *doctor) checkTenantWatch(ctx context.Context, dir *graph.Client) {
	readCtx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	err := dir.CheckAuditLog(readCtx)
	var ae *approvals.Error
	switch {
	case err == nil:
		d.list.pass(chkTenantWatch, "tapbot can read Entra ID's audit log ("+graph.AuditLogPermission+"), so passes made outside tapbot are raised")
	case errors.As(err, &ae) && ae.Code == approvals.Forbidden:
		d.list.fail(chkTenantWatch, "Entra ID does not let tapbot read its audit log ("+graph.AuditLogPermission+
			" is not granted): only the tenant watcher is off, so passes made outside tapbot are not raised; everything else works",
			"in the Entra admin center → App registrations → tapbot's app → API permissions → Add a permission → Microsoft Graph → Application permissions, add "+
				graph.AuditLogPermission+", then Grant admin consent; or set TAP_TENANT_WATCH_INTERVAL=off to go without")
	default:
		d.list.fail(chkTenantWatch, "cannot read Entra ID's audit log: "+graphProblem(err),
			"run tapbot doctor again in a few minutes; if it persists, check that GRAPH_BASE_URL reaches Microsoft Graph")
	}
}

// tokenClaims are the claims of an Entra ID access token doctor reads.
type tokenClaims struct {
	Roles []string `json:"roles"`
	Scp   string   `json:"scp"`
	IDTyp string   `json:"idtyp"`
}

// readClaims decodes the payload of a JWT. The signature is not verified: the token came
// straight from Entra ID over TLS, and only its own holder reads it, to see what was granted.
func readClaims(token string) (tokenClaims, error) {
	var c tokenClaims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return c, errors.New("the access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return c, errors.New("the access token's payload is not base64url")
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, errors.New("the access token's payload is not JSON")
	}
	return c, nil
}

func (d *doctor) checkGraphPermissions(token string) {
	const grant = "in the Entra admin center → App registrations → tapbot's app → API permissions → Add a permission → Microsoft Graph → Application permissions, add %s, then Grant admin consent"
	claims, err := readClaims(token)
	if err != nil {
		d.list.fail(chkGraphPerms, "cannot tell which permissions are granted: "+err.Error(),
			"check the app registration's API permissions by hand against README.md")
		return
	}
	if len(claims.Roles) == 0 && (claims.Scp != "" || claims.IDTyp == "user") {
		d.list.fail(chkGraphPerms, "the credential signed in as a user (delegated permissions), not as tapbot's app",
			"set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or a certificate, workload or managed identity) so azidentity signs in as the app")
		return
	}
	has := func(name string) bool {
		return slices.ContainsFunc(claims.Roles, func(r string) bool { return strings.EqualFold(r, name) })
	}
	var missing, names, broader []string
	needed := neededGraphPermissions(d.cfg)
	for _, p := range needed {
		if has(p.Name) {
			continue
		}
		if i := slices.IndexFunc(p.Broader, has); i >= 0 {
			broader = append(broader, p.Broader[i]+" stands in for "+p.Name)
			continue
		}
		missing = append(missing, p.Name+" ("+p.Why+")")
		names = append(names, p.Name)
	}
	if len(missing) > 0 {
		d.list.fail(chkGraphPerms, "missing "+strings.Join(missing, ", "), fmt.Sprintf(grant, strings.Join(names, ", ")))
		return
	}
	detail := fmt.Sprintf("all %d application permissions granted", len(needed))
	if len(broader) > 0 {
		detail += " (" + strings.Join(broader, "; ") + ": more than tapbot needs)"
	}
	d.list.pass(chkGraphPerms, detail)
}

// signInProblem is the problem and the fix of a failed token request, as graph's SignInError
// gives them.
func signInProblem(err error) (problem, fix string) {
	var se *graph.SignInError
	if errors.As(err, &se) {
		return se.Problem, se.Fix
	}
	return "Entra ID gave no token: " + oneLine(err),
		"check AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or the certificate, workload or managed identity) against the app registration in the Entra admin center"
}

// graphProblem is the plain sentence graph gives for a failed call, or the error itself.
func graphProblem(err error) string {
	var ae *approvals.Error
	if errors.As(err, &ae) {
		return ae.Message
	}
	return oneLine(err)
}

// ---- Store and encryption key ----

func (d *doctor) checkStore(ctx context.Context) {
	if d.skipBroken(chkStore, "REDIS_URL") {
		d.list.skip(chkRedisWrite, "needs a reachable Redis (see "+chkStore+")")
		return
	}
	if d.cfg.RedisURL == "" {
		d.list.pass(chkStore, "embedded (REDIS_URL is not set): fine for a single replica; pending requests and unrevealed passes are lost when tapbot stops")
		return
	}
	where := redisWhere(d.cfg.RedisURL)
	rdb, err := redisstore.NewClient(d.cfg.RedisURL)
	if err != nil {
		d.list.fail(chkStore, "REDIS_URL: "+oneLine(err), "fix REDIS_URL, e.g. redis://:password@redis:6379/0 (README.md lists the options)")
		d.list.skip(chkRedisWrite, "needs a reachable Redis (see "+chkStore+")")
		return
	}
	defer rdb.Close()
	pingCtx, cancel := context.WithTimeout(ctx, doctorTimeout)
	err = rdb.Ping(pingCtx).Err()
	cancel()
	if err != nil {
		d.list.fail(chkStore, "cannot reach Redis at "+where+": "+oneLine(err),
			"check REDIS_URL (host, port, password, rediss:// for TLS), that Redis is running, and that this host may connect to it")
		d.list.skip(chkRedisWrite, "needs a reachable Redis (see "+chkStore+")")
		return
	}
	d.list.pass(chkStore, "Redis at "+where+" answers PING")

	// The key shares the bot's hash tag, so on a cluster it lands where tapbot's keys do.
	key := "{tapbot}:doctor:" + randomHex(8)
	value := randomHex(16)
	wctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	err = rdb.Set(wctx, key, value, doctorKeyTTL).Err()
	var got string
	if err == nil {
		got, err = rdb.Get(wctx, key).Result()
	}
	if err == nil {
		err = rdb.Del(wctx, key).Err()
	}
	switch {
	case err != nil:
		msg := oneLine(err)
		fix := "check that REDIS_URL's user may write keys (ACL), that Redis is not out of memory (maxmemory), and that REDIS_URL points at a primary, not a replica"
		if strings.Contains(msg, "READONLY") {
			fix = "REDIS_URL points at a read-only replica: point it at the primary, or use master_name=… for Sentinel"
		}
		d.list.fail(chkRedisWrite, "cannot write, read and delete a key: "+msg, fix)
	case got != value:
		d.list.fail(chkRedisWrite, "a key written was read back different",
			"check that nothing else rewrites tapbot's {tapbot}: keys and that REDIS_URL does not point at a proxy that mangles values")
	default:
		d.checkScripts(wctx, rdb)
	}
}

// checkScripts takes and puts back a throwaway sealed pass through the store's own scripts, as
// REDIS_URL's user, and with the WAIT of TAP_REDIS_REPLICAS when it is set: a user whose ACL
// allows SET and GET but not the scripts (or WAIT) would pass the plain key check and then fail
// every request and every reveal.
func (d *doctor) checkScripts(ctx context.Context, rdb redis.UniversalClient) {
	// Not closed: it shares rdb, which checkStore closes.
	s := redisstore.New(rdb, redisstore.Prefix+"doctor:"+randomHex(8)+":", redisstore.WithReplicas(d.cfg.RedisReplicas))
	err := s.RoundTrip(ctx, doctorKeyTTL)
	replicas := ""
	if n := d.cfg.RedisReplicas; n > 0 {
		replicas = fmt.Sprintf(", and TAP_REDIS_REPLICAS=%d replicas acknowledged the claim", n)
	}
	switch {
	case errors.Is(err, approvals.ErrNotReplicated) && !strings.Contains(err.Error(), "NOPERM"):
		d.list.fail(chkRedisWrite, "a reveal's claim was not acknowledged by TAP_REDIS_REPLICAS replicas: "+oneLine(err),
			"check that the replicas are connected to the master (INFO replication, connected_slaves) and keep up, or set TAP_REDIS_REPLICAS to the number there are")
	case err != nil:
		fix := "check that REDIS_URL's user may run the scripts and commands README.md lists under \"Redis\" (ACL SETUSER), WAIT included when TAP_REDIS_REPLICAS is set"
		d.list.fail(chkRedisWrite, "cannot take and put back a sealed pass with tapbot's scripts: "+oneLine(err), fix)
	default:
		d.list.pass(chkRedisWrite, fmt.Sprintf("wrote, read and deleted a key that would expire in %s; took and put back a sealed pass with tapbot's scripts%s", doctorKeyTTL, replicas))
	}
}

// redisWhere names the Redis server without the password that REDIS_URL may hold.
func redisWhere(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "REDIS_URL"
	}
	if u.Scheme == "unix" {
		return u.Path
	}
	if u.Host == "" {
		return "REDIS_URL"
	}
	return u.Host
}

func (d *doctor) checkEncryptionKey() {
	if d.skipBroken(chkEncryptionKy, "TAP_ENCRYPTION_KEY") {
		return
	}
	keys := d.cfg.EncryptionKeys
	if len(keys) == 0 {
		d.list.pass(chkEncryptionKy, "TAP_ENCRYPTION_KEY is not set: the embedded store seals passes with a key made at each start")
		return
	}
	sealer, err := approvals.NewSealer(keys...)
	if err != nil {
		d.list.fail(chkEncryptionKy, "TAP_ENCRYPTION_KEY: "+oneLine(err), "make a key with: openssl rand -base64 32")
		return
	}
	plain := []byte("tapbot doctor " + randomHex(8))
	opened, err := sealer.Open("doctor", sealer.Seal("doctor", plain))
	if err != nil || string(opened) != string(plain) {
		d.list.fail(chkEncryptionKy, "sealing and opening a test value with TAP_ENCRYPTION_KEY did not round-trip",
			"make a new key with: openssl rand -base64 32 (keep the old one after it in the list until old passes expire)")
		return
	}
	detail := "1 key; seal and open round-trip"
	if len(keys) > 1 {
		detail = fmt.Sprintf("%d keys (the first encrypts, all decrypt); seal and open round-trip", len(keys))
	}
	// Fingerprints reveal nothing of the keys; replicas whose lists differ cannot open each
	// other's passes, and this is where an operator compares them.
	detail += "; fingerprints " + strings.Join(sealer.KeyIDs(), ", ") + " (compare across replicas)"
	d.list.pass(chkEncryptionKy, detail)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// oneLine makes an error fit one checklist line.
func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}

// ---- the checklist ----

// checklist prints one line per check and counts the outcomes. Every line goes through redact,
// so no token, secret or key can reach the output even if an error from a dependency echoes it.
type checklist struct {
	out                     io.Writer
	secrets                 []string
	passed, failed, skipped int
}

func newChecklist(out io.Writer, secrets []string) *checklist {
	return &checklist{out: out, secrets: secrets}
}

// rawSecrets are the secret values of the environment and of the secret files it names, read raw
// so they are redacted even when the configuration does not load: each whole, each key of a
// TAP_ENCRYPTION_KEY list, and the password in a REDIS_URL.
func rawSecrets(getenv func(string) string) []string {
	var out []string
	for _, v := range config.Secrets(getenv) {
		out = append(out, v)
		for _, k := range strings.Split(v, ",") {
			out = append(out, strings.TrimSpace(k))
		}
		if u, err := url.Parse(v); err == nil {
			if p, ok := u.User.Password(); ok {
				out = append(out, p)
			}
			out = append(out, u.Query()["password"]...)
		}
	}
	return out
}

func (c *checklist) redact(s string) string {
	for _, secret := range c.secrets {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

func (c *checklist) line(s string) { fmt.Fprintln(c.out, c.redact(s)) }

func (c *checklist) pass(name, detail string) {
	c.passed++
	c.line("✓ " + name + ": " + detail)
}

// fail prints what is wrong and, after a dash, what to do about it.
func (c *checklist) fail(name, problem, fix string) {
	c.failed++
	c.line("✗ " + name + ": " + problem + " — " + fix)
}

func (c *checklist) skip(name, why string) {
	c.skipped++
	c.line("○ " + name + ": skipped: " + why)
}

// finish prints the summary line and returns the error main turns into exit status 1.
func (c *checklist) finish() error {
	total := c.passed + c.failed + c.skipped
	if c.failed == 0 && c.skipped == 0 {
		c.line(fmt.Sprintf("All %d checks passed.", total))
		return nil
	}
	summary := fmt.Sprintf("%d of %d checks failed", c.failed, total)
	if c.skipped > 0 {
		summary += fmt.Sprintf(", %d skipped", c.skipped)
	}
	c.line(summary + ": fix the ✗ lines above and run tapbot doctor again.")
	if c.failed == 0 {
		return fmt.Errorf("doctor: %d checks could not run", c.skipped)
	}
	failed := "checks"
	if c.failed == 1 {
		failed = "check"
	}
	return fmt.Errorf("doctor: %d %s failed", c.failed, failed)
}
