package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/tapbot/tapbot/config"
	"github.com/tapbot/tapbot/internal/graphfake"
	"github.com/tapbot/tapbot/internal/slackfake"
)

// The cast of the demo.
const (
	demoManager  = "UMAYA"
	demoApprover = "UARI"
	demoNewHire  = "UADA"
	demoChannel  = "CAPPROVALS"
	demoGeneral  = "CGENERAL"
)

var demoNames = map[string]string{demoManager: "Maya (manager)", demoApprover: "Ari (IT approver)", demoNewHire: "Ada (new hire)"}

// runDemo is `tapbot demo`: the real bot, wired as in production, against built-in simulations of
// Slack and Entra ID and the embedded store. A manager asks, an approver approves, the new hire
// reveals the pass and then tries again; the conversation is printed as each person sees it.
// Nothing leaves the machine and no configuration is needed.
func runDemo(ctx context.Context, out io.Writer) error {
	_, err := playDemo(ctx, out)
	return err
}

// playDemo runs the demo and returns the simulated pass, so tests can check where it appeared.
func playDemo(ctx context.Context, out io.Writer) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	slackSim := slackfake.New(slackfake.Options{BotToken: "xoxb-demo", AppToken: "xapp-demo"})
	defer slackSim.Close()
	for id, email := range map[string]string{demoManager: "maya@contoso.example", demoApprover: "ari@contoso.example", demoNewHire: "ada@contoso.example"} {
		slackSim.AddUser(slackfake.User{ID: id, Name: strings.ToLower(strings.Fields(demoNames[id])[0]), RealName: demoNames[id], Email: email, TZ: "Europe/London"})
	}
	slackSim.AddChannel(demoChannel, demoManager, demoApprover)
	slackSim.AddChannel(demoGeneral, demoManager, demoApprover, demoNewHire)

	entra, err := graphfake.New(graphfake.Options{})
	if err != nil {
		return "", fmt.Errorf("start the Entra ID simulation: %w", err)
	}
	defer entra.Close()
	const adaEntra = "0d5c8a4e-2f4b-4a8e-9e36-2b1f0c6d7a11"
	entra.AddUser(graphfake.User{ID: adaEntra, UPN: "ada@contoso.example", Mail: "ada@contoso.example", DisplayName: "Ada Lovelace"})
	entra.AddUser(graphfake.User{UPN: "maya@contoso.example", Mail: "maya@contoso.example", DisplayName: "Maya Manager"})
	entra.AddUser(graphfake.User{UPN: "ari@contoso.example", Mail: "ari@contoso.example", DisplayName: "Ari Approver"})

	// The bot reads its credentials the way it always does; the demo points them at the simulation.
	cfg, err := config.Load(func(name string) string {
		return map[string]string{
			"SLACK_APP_TOKEN": "xapp-demo", "SLACK_BOT_TOKEN": "xoxb-demo", "SLACK_API_URL": slackSim.APIURL(),
			"GRAPH_BASE_URL": entra.GraphURL(), "TAP_APPROVAL_CHANNEL": demoChannel, "TAP_APPROVERS": demoApprover,
			"TAP_HTTP_ADDR": "127.0.0.1:0",
		}[name]
	})
	if err != nil {
		return "", fmt.Errorf("demo configuration: %w", err)
	}
	restore := setDemoCredential(entra)
	defer restore()

	m := NewMain(cfg, Options{
		Transport: hostRouter{entra.Addr(): entra.Transport()},
		Logger:    slog.New(slog.DiscardHandler),
	})
	defer m.Close()
	botCtx, stopBot := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(botCtx) }()
	defer func() { stopBot(); <-done }()

	d := &demo{ctx: ctx, slack: slackSim, out: out}
	if err := d.wait("the bot to connect", func() bool { return slackSim.ConnectionCount() > 0 }); err != nil {
		select {
		case runErr := <-done:
			done <- runErr
			return "", fmt.Errorf("the bot did not start: %w", runErr)
		default:
			return "", err
		}
	}
	return d.play(entra, adaEntra)
}

type demo struct {
	ctx   context.Context
	slack *slackfake.Server
	out   io.Writer
}

func (d *demo) play(entra *graphfake.Server, adaEntra string) (string, error) {
	d.say("tapbot demo: the real bot against built-in simulations of Slack and Entra ID. Nothing leaves this machine.")

	const command = "<@UADA|ada> 2h once new laptop, setting up a passkey"
	d.step("Maya (manager)", "types in #general:  /tap @ada 2h once new laptop, setting up a passkey")
	if _, err := d.slack.SlashCommand(d.ctx, demoManager, demoGeneral, "/tap", command); err != nil {
		return "", fmt.Errorf("the /tap command: %w", err)
	}
	if err := d.wait("the confirmation", func() bool { return len(d.slack.Ephemerals(demoManager)) > 0 }); err != nil {
		return "", err
	}
	// Slack shows a message's blocks, and its text only when it has none.
	confirmation := d.slack.Ephemerals(demoManager)[0]
	shown := confirmation.Text
	if len(confirmation.Blocks) > 0 {
		shown = slackfake.BlocksText(confirmation.Blocks)
	}
	d.show("Maya sees, only she", shown, confirmation.Buttons())

	if err := d.wait("the approval request", func() bool { return len(d.slack.Messages(demoChannel)) > 0 }); err != nil {
		return "", err
	}
	approval := d.slack.Messages(demoChannel)[0]
	d.show("Ari sees in #tap-approvals", slackfake.BlocksText(approval.Blocks), approval.Buttons())

	d.step("Ari (IT approver)", "clicks [Approve]")
	if err := d.click(demoApprover, approval, "Approve"); err != nil {
		return "", err
	}
	dmChannel := d.slack.DMChannel(demoNewHire)
	if err := d.wait("Ada's DM", func() bool { return len(d.slack.Messages(dmChannel)) > 0 }); err != nil {
		return "", err
	}
	if err := d.wait("the approval message to update", func() bool {
		m, _ := d.slack.Message(approval.Ref())
		return strings.Contains(m.PlainText(), "Approved by")
	}); err != nil {
		return "", err
	}
	updated, _ := d.slack.Message(approval.Ref())
	d.show("Ari sees the request turn into", slackfake.BlocksText(updated.Blocks), updated.Buttons())
	dm := d.slack.Messages(dmChannel)[0]
	d.show("Ada gets a DM (it holds no pass)", slackfake.BlocksText(dm.Blocks), dm.Buttons())

	d.step("Ada (new hire)", "clicks [Reveal pass]")
	if err := d.click(demoNewHire, dm, "Reveal pass"); err != nil {
		return "", err
	}
	passes := entra.Passes(adaEntra)
	if len(passes) != 1 {
		return "", fmt.Errorf("the Entra ID simulation holds %d passes for Ada, want 1", len(passes))
	}
	code := passes[0].Code
	pass, err := d.view(demoNewHire, code)
	if err != nil {
		return "", err
	}
	d.show("Ada sees, in a window Slack keeps no copy of", pass, nil)
	if err := d.wait("the DM to say revealed", func() bool {
		m, _ := d.slack.Message(dm.Ref())
		return strings.Contains(m.PlainText(), "Revealed")
	}); err != nil {
		return "", err
	}

	d.step("Ada (new hire)", "clicks [Reveal pass] again, on her phone that still shows the old message")
	if err := d.staleClick(demoNewHire, dm, "Reveal pass"); err != nil {
		return "", err
	}
	refused, err := d.view(demoNewHire, "already revealed")
	if err != nil {
		return "", err
	}
	d.show("Ada sees", refused, nil)
	final, _ := d.slack.Message(dm.Ref())
	d.show("Ada's DM now says", slackfake.BlocksText(final.Blocks), final.Buttons())

	if strings.Contains(d.slack.AllPersistedText(), code) {
		return "", fmt.Errorf("the simulated pass reached Slack history")
	}
	d.say("\nDone: the pass was shown once, only to Ada, and appears nowhere in Slack's history. It now exists only in Entra ID.")
	return code, nil
}

func (d *demo) click(user string, m slackfake.Message, label string) error {
	b, err := buttonLabelled(m, label)
	if err != nil {
		return err
	}
	_, err = d.slack.ClickButton(d.ctx, user, m.Ref(), b.ActionID, b.Value)
	return err
}

func (d *demo) staleClick(user string, m slackfake.Message, label string) error {
	b, err := buttonLabelled(m, label)
	if err != nil {
		return err
	}
	_, err = d.slack.ClickStaleButton(d.ctx, user, m.Ref(), b.ActionID, b.Value)
	return err
}

func buttonLabelled(m slackfake.Message, label string) (slackfake.Button, error) {
	for _, b := range m.Buttons() {
		if b.Text == label {
			return b, nil
		}
	}
	return slackfake.Button{}, fmt.Errorf("no %q button to click", label)
}

// view waits for a modal shown to user whose text contains want, and returns its text.
func (d *demo) view(user, want string) (string, error) {
	var text string
	err := d.wait("a window for "+demoNames[user]+" showing "+want, func() bool {
		for _, v := range d.slack.Views(user) {
			if v.Event == "update" && strings.Contains(v.PlainText(), want) {
				text = v.PlainText()
				return true
			}
		}
		return false
	})
	if err != nil {
		if vs := d.slack.Views(user); len(vs) > 0 {
			last := vs[len(vs)-1]
			err = fmt.Errorf("%w (last window, %s: %q)", err, last.Event, readable(last.PlainText()))
		}
	}
	return text, err
}

func (d *demo) wait(what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
	defer cancel()
	if err := d.slack.WaitFor(ctx, cond); err != nil {
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	return nil
}

func (d *demo) say(s string) { fmt.Fprintln(d.out, s) }

func (d *demo) step(who, what string) { fmt.Fprintf(d.out, "\n▶ %s %s\n", who, what) }

// show prints a Slack surface as plain text, indented, with its buttons.
func (d *demo) show(title, text string, buttons []slackfake.Button) {
	labels := map[string]bool{}
	var row []string
	for _, b := range buttons {
		labels[b.Text] = true
		row = append(row, "["+b.Text+"]")
	}
	fmt.Fprintf(d.out, "  %s:\n", title)
	for _, line := range strings.Split(readable(text), "\n") {
		if strings.TrimSpace(line) == "" || labels[strings.TrimSpace(line)] {
			continue
		}
		fmt.Fprintf(d.out, "    │ %s\n", line)
	}
	if len(row) > 0 {
		fmt.Fprintf(d.out, "    │ %s\n", strings.Join(row, " "))
	}
}

var (
	mentionMarkup = regexp.MustCompile(`<@([A-Z0-9]+)(\|[^>]*)?>`)
	dateMarkup    = regexp.MustCompile(`<!date\^[^|>]*\|([^>]*)>`)
	linkMarkup    = regexp.MustCompile(`<(https?://[^|>]+)(\|[^>]*)?>`)
	entities      = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")
)

// readable turns Slack markup into what a person reads on screen.
func readable(s string) string {
	s = mentionMarkup.ReplaceAllStringFunc(s, func(m string) string {
		id := mentionMarkup.FindStringSubmatch(m)[1]
		if name, ok := demoNames[id]; ok {
			return "@" + strings.Fields(name)[0]
		}
		return "@" + id
	})
	s = dateMarkup.ReplaceAllString(s, "$1")
	s = linkMarkup.ReplaceAllString(s, "$1")
	return entities.Replace(s)
}

// hostRouter sends requests for the given hosts through their own transports (the Entra ID
// simulation's, which trusts its certificate) and everything else through the default one.
type hostRouter map[string]http.RoundTripper

func (h hostRouter) RoundTrip(r *http.Request) (*http.Response, error) {
	if rt, ok := h[r.URL.Host]; ok {
		return rt.RoundTrip(r)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// setDemoCredential points azidentity's environment at the Entra ID simulation for the demo's
// lifetime and returns a function that puts the environment back.
func setDemoCredential(entra *graphfake.Server) (restore func()) {
	set := map[string]string{
		"AZURE_TENANT_ID": entra.TenantID(), "AZURE_CLIENT_ID": entra.ClientID(),
		"AZURE_CLIENT_SECRET": entra.ClientSecret(), "AZURE_AUTHORITY_HOST": entra.AuthorityHost(),
		// Anything that would make azidentity choose another credential is cleared.
		"AZURE_CLIENT_CERTIFICATE_PATH": "", "AZURE_FEDERATED_TOKEN_FILE": "", "AZURE_USERNAME": "",
		"AZURE_TOKEN_CREDENTIALS": "", "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN": "",
	}
	saved := map[string]*string{}
	for k, v := range set {
		if old, ok := os.LookupEnv(k); ok {
			saved[k] = &old
		} else {
			saved[k] = nil
		}
		if v == "" {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, v)
		}
	}
	return func() {
		for k, v := range saved {
			if v == nil {
				os.Unsetenv(k)
			} else {
				os.Setenv(k, *v)
			}
		}
	}
}
