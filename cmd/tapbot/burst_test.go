package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapbot/tapbot/internal/graphfake"
	"github.com/tapbot/tapbot/internal/slackfake"
)

// A Monday: a cohort's managers ask for passes all at once, and Slack's rate limits (published
// tiers, at burstSpeed times real time so the test takes seconds, not minutes) make most of the
// work wait. Nothing may fail, be cancelled, be lost or happen twice for it.

// burstSpeed compresses Slack's limits for these tests: a 100-request burst that takes about
// three minutes at Slack's real pace takes about ten seconds.
const burstSpeed = 20

// cohort adds n new starters (Slack and Entra) and m managers who ask for them.
type cohort struct {
	starters []string // Slack IDs
	managers []string
	entra    map[string]string // Slack ID -> Entra object ID
}

// burstChannel is where the cohort's managers type /tap; every member may act in it.
const burstChannel = "COHORT"

func (w *world) addCohort(n, m int) cohort {
	w.slack.AddChannel(burstChannel)
	c := cohort{entra: map[string]string{}}
	add := func(id, name string) {
		email := strings.ToLower(id) + "@example.com"
		w.slack.AddUser(slackfake.User{ID: id, Name: strings.ToLower(id), Email: email, TZ: "Europe/London"})
		u := w.graph.AddUser(graphfake.User{UPN: email, Mail: email, DisplayName: name})
		c.entra[id] = u.ID
	}
	for i := range n {
		id := fmt.Sprintf("UNEW%03d", i)
		add(id, fmt.Sprintf("New Starter %d", i))
		c.starters = append(c.starters, id)
	}
	for i := range m {
		id := fmt.Sprintf("UMGR%03d", i)
		add(id, fmt.Sprintf("Manager %d", i))
		c.managers = append(c.managers, id)
	}
	return c
}

// managerOf is who asks for starter i.
func (c cohort) managerOf(i int) string { return c.managers[i%len(c.managers)] }

// longWait waits for cond for up to d, for work that queues behind Slack's limits.
func (w *world) longWait(what string, d time.Duration, cond func() bool) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := w.slack.WaitFor(ctx, cond); err != nil {
		w.t.Fatalf("waiting for %s: %v\nSlack calls: %d, 429s: %d\nlogs (tail):\n%s", what, err,
			len(w.slack.CallLog()), w.slack.RateLimited(""), tail(w.logs.String(), 40))
	}
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// approveAsTheyAppear clicks Approve on every pending approval message as it appears, until
// want were clicked or ctx ends; it returns how many it clicked.
func (w *world) approveAsTheyAppear(ctx context.Context, want int) <-chan int {
	out := make(chan int, 1)
	go func() {
		clicked := map[string]bool{}
		for len(clicked) < want && ctx.Err() == nil {
			for _, m := range w.slack.Messages(approvalChannel) {
				if clicked[m.TS] {
					continue
				}
				for _, b := range m.Buttons() {
					if b.Text == "Approve" {
						clicked[m.TS] = true
						if _, err := w.slack.ClickButton(ctx, approver, m.Ref(), b.ActionID, b.Value); err != nil {
							w.t.Errorf("approve %s: %v", m.TS, err)
						}
					}
				}
			}
			_ = w.slack.WaitFor(ctx, func() bool {
				return len(clicked) >= want || len(w.slack.Messages(approvalChannel)) > len(clicked)
			})
		}
		out <- len(clicked)
	}()
	return out
}

// revealDM returns user's Reveal DMs (those that showed a Reveal pass button).
func (w *world) revealDMs(user string) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range w.slack.Messages(w.slack.DMChannel(user)) {
		for _, v := range m.History {
			if strings.Contains(string(v.Blocks), `"Reveal pass"`) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// fileBurst has every manager file their starters' requests at once.
func (w *world) fileBurst(c cohort) {
	w.t.Helper()
	var wg sync.WaitGroup
	for mi, mgr := range c.managers {
		wg.Go(func() {
			for i := mi; i < len(c.starters); i += len(c.managers) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := w.slack.SlashCommand(ctx, mgr, burstChannel, "/tap", "<@"+c.starters[i]+"> 1h once first morning")
				cancel()
				if err != nil {
					w.t.Errorf("/tap for %s: %v", c.starters[i], err)
				}
			}
		})
	}
	wg.Wait()
}

// assertBurstDelivered checks what each person of the burst sees: one approval message and one
// pass and one Reveal DM per starter, every requester told the truth, nothing failed.
func (w *world) assertBurstDelivered(c cohort) {
	w.t.Helper()
	approvals := w.slack.Messages(approvalChannel)
	if len(approvals) != len(c.starters) {
		w.t.Errorf("%d approval messages for %d requests", len(approvals), len(c.starters))
	}
	perTarget := map[string]int{}
	for _, m := range approvals {
		for _, s := range c.starters {
			if strings.Contains(m.Text, strings.ToLower(s)+"@example.com") {
				perTarget[s]++
			}
		}
		if !strings.Contains(m.Text, "Approved by") {
			w.t.Errorf("approval message %s ends as %q, want approved", m.TS, m.Text)
		}
	}
	for _, s := range c.starters {
		if perTarget[s] != 1 {
			w.t.Errorf("%s has %d approval messages, want 1", s, perTarget[s])
		}
		if n := len(w.graph.Passes(c.entra[s])); n != 1 {
			w.t.Errorf("%s has %d passes in Entra ID, want 1", s, n)
		}
		if n := len(w.revealDMs(s)); n != 1 {
			w.t.Errorf("%s got %d Reveal DMs, want 1", s, n)
		}
	}
	for _, mgr := range c.managers {
		var confirmed, queuedLeft int
		for _, e := range w.slack.Ephemerals(mgr) {
			text := e.PlainText()
			switch {
			case strings.Contains(text, ":warning:"), strings.Contains(text, "went wrong"), strings.Contains(text, "nothing was"):
				w.t.Errorf("%s was told %q", mgr, text)
			case strings.Contains(text, ":outbox_tray:"):
				confirmed++
			case strings.Contains(text, "queued"):
				queuedLeft++
			}
		}
		want := len(c.starters) / len(c.managers)
		if confirmed != want || queuedLeft != 0 {
			w.t.Errorf("%s sees %d confirmations and %d queued notes never confirmed; want %d and 0", mgr, confirmed, queuedLeft, want)
		}
		approved := 0
		for _, m := range w.slack.Messages(w.slack.DMChannel(mgr)) {
			if strings.Contains(m.Text, "was approved by") {
				approved++
			}
		}
		if approved != want {
			w.t.Errorf("%s got %d 'approved' DMs for %d requests", mgr, approved, want)
		}
	}
	w.assertNoCohortPassLeaked(c)
}

func (w *world) assertNoCohortPassLeaked(c cohort) {
	persisted, logs, dump := w.slack.AllPersistedText(), w.logs.String(), w.redisDump()
	for _, s := range c.starters {
		for _, p := range w.graph.Passes(c.entra[s]) {
			if strings.Contains(persisted, p.Code) || strings.Contains(logs, p.Code) || strings.Contains(dump, p.Code) {
				w.t.Errorf("the pass of %s is in Slack history, the logs or Redis", s)
			}
		}
	}
}

// TestMondayBurstLosesNothing files 100 requests for 100 new starters from 10 managers at once,
// approves each as it appears, and checks that Slack's limits only delayed the work: every
// request reached the approvers and its starter, once, and every requester heard the truth.
// With two replicas on Redis the limits are shared, so the replicas together earn no more
// 429s than one does.
func TestMondayBurstLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []worldOption
		replicas int
	}{
		{"embedded store, one replica", nil, 1},
		{"redis, two replicas", []worldOption{withRedis}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, append(tc.opts, withSlackSpeed(burstSpeed), withoutStart)...)
			c := w.addCohort(100, 10)
			w.start()
			for range tc.replicas - 1 {
				w.startReplica()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			approved := w.approveAsTheyAppear(ctx, len(c.starters))
			start := time.Now()
			w.fileBurst(c)
			if code, body := w.get("/readyz"); code != 200 {
				t.Errorf("/readyz = %d %q while Slack throttles; being throttled is not being unready", code, body)
			}
			if n := <-approved; n != len(c.starters) {
				t.Fatalf("%d of %d approval messages appeared", n, len(c.starters))
			}
			w.longWait("every Reveal DM", 2*time.Minute, func() bool {
				for _, s := range c.starters {
					if len(w.revealDMs(s)) == 0 {
						return false
					}
				}
				return true
			})
			w.longWait("every requester's approved DM", time.Minute, func() bool {
				n := 0
				for _, mgr := range c.managers {
					for _, m := range w.slack.Messages(w.slack.DMChannel(mgr)) {
						if strings.Contains(m.Text, "was approved by") {
							n++
						}
					}
				}
				return n >= len(c.starters)
			})
			took := time.Since(start)
			w.assertBurstDelivered(c)
			limited := w.slack.RateLimited("")
			byMethod := map[string]int{}
			for _, call := range w.slack.CallLog() {
				byMethod[call.Method]++
			}
			t.Logf("calls by method: %v", byMethod)
			t.Logf("%d requests, %d replicas: last Reveal DM after %v at %dx Slack's pace; %d Slack calls, %d answered 429",
				len(c.starters), tc.replicas, took.Round(time.Millisecond), burstSpeed, len(w.slack.CallLog()), limited)
			// Pacing keeps tapbot inside Slack's limits; the odd 429 comes from the fake's
			// one-second Retry-After granularity at burstSpeed. Replicas that did not share the
			// buckets would each spend the whole of Slack's budget and earn dozens.
			if limited > 10 {
				t.Errorf("Slack answered %d calls with 429; %d replicas must pace together within Slack's limits", limited, tc.replicas)
			}
		})
	}
}

// TestSlackStricterThanPublishedStillDelivers runs Slack at half the rate tapbot paces for, as a
// workspace whose real limits are lower than the published ones would: tapbot earns 429s, and
// each must only delay its call (Retry-After, on every replica), never fail it.
func TestSlackStricterThanPublishedStillDelivers(t *testing.T) {
	w := newWorld(t, withRedis, withSlackSpeeds(burstSpeed/2, burstSpeed), withoutStart)
	c := w.addCohort(30, 3)
	w.start()
	w.startReplica()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	approved := w.approveAsTheyAppear(ctx, len(c.starters))
	w.fileBurst(c)
	if n := <-approved; n != len(c.starters) {
		t.Fatalf("%d of %d approval messages appeared", n, len(c.starters))
	}
	w.longWait("every Reveal DM and approved DM", 2*time.Minute, func() bool {
		n := 0
		for _, mgr := range c.managers {
			for _, m := range w.slack.Messages(w.slack.DMChannel(mgr)) {
				if strings.Contains(m.Text, "was approved by") {
					n++
				}
			}
		}
		for _, s := range c.starters {
			if len(w.revealDMs(s)) == 0 {
				return false
			}
		}
		return n >= len(c.starters)
	})
	w.assertBurstDelivered(c)
	if w.slack.RateLimited("") == 0 {
		t.Fatal("Slack answered no call with 429: this test did not exercise Retry-After")
	}
	t.Logf("%d calls answered 429, each sent again after Retry-After", w.slack.RateLimited(""))
}

// TestApprovalPostsGoOutInOrder queues requests one after another behind Slack's limit on posts
// to the approval channel (about one a second), and in the middle Slack answers 429 for a few
// seconds: the approval messages must reach the channel in the order the requests were filed,
// a post that was refused resent in its place, and every requester told the truth.
func TestApprovalPostsGoOutInOrder(t *testing.T) {
	w := newWorld(t, withoutStart)
	c := w.addCohort(10, 2)
	w.start()
	waitingPosts := func() int {
		return int(w.metric(`tapbot_slack_calls_waiting{method="chat.postMessage"}`))
	}
	for i, s := range c.starters {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := w.slack.SlashCommand(ctx, c.managerOf(i), burstChannel, "/tap", "<@"+s+"> 1h once first morning"); err != nil {
			t.Fatal(err)
		}
		cancel()
		// The next request is filed once this one is posted or in line for its post.
		w.longWait("request "+s+" in line", 30*time.Second, func() bool {
			return w.slack.Served("chat.postMessage")+waitingPosts() >= i+1
		})
		if i == 6 {
			w.slack.ThrottleFor("chat.postMessage", 3*time.Second)
		}
	}
	w.longWait("every approval message", time.Minute, func() bool {
		return len(w.slack.Messages(approvalChannel)) == len(c.starters)
	})
	var order []string
	for _, m := range w.slack.Messages(approvalChannel) {
		for _, s := range c.starters {
			if strings.Contains(m.Text, strings.ToLower(s)+"@") {
				order = append(order, s)
			}
		}
	}
	if strings.Join(order, ",") != strings.Join(c.starters, ",") {
		t.Fatalf("approval messages reached the channel in the order\n%v\nwant the filing order\n%v", order, c.starters)
	}
	if w.slack.RateLimited("chat.postMessage") == 0 {
		t.Fatal("no post was answered 429: the test did not exercise resends")
	}
	w.longWait("every confirmation", 30*time.Second, func() bool {
		confirmed := 0
		for _, mgr := range c.managers {
			for _, e := range w.slack.Ephemerals(mgr) {
				if strings.Contains(e.PlainText(), "is queued") {
					return false // a queued note not yet replaced by its confirmation
				}
				if strings.Contains(e.PlainText(), ":outbox_tray:") {
					confirmed++
				}
			}
		}
		return confirmed == len(c.starters)
	})
}

// TestRevealWhenSlackThrottlesTheModal clicks Reveal pass while Slack answers views.open with
// 429. A short Retry-After fits in the trigger's three seconds and is waited out: the pass is
// shown once. A longer one does not: the person is told when to click again, the pass stays
// sealed and unseen, and the next click after that shows it, once.
func TestRevealWhenSlackThrottlesTheModal(t *testing.T) {
	for _, tc := range []struct {
		name     string
		throttle time.Duration
		toldTo   string // what the person is told after the first click; "" when shown at once
	}{
		{"Retry-After within the trigger's life", time.Second, ""},
		{"Retry-After past the trigger's life", 5 * time.Second, "click *Reveal pass* again in 5 seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, withRedis)
			w.tap(manager, "<@UADA> 1h once new laptop")
			w.click(approver, w.approvalMessage(1), "Approve")
			dm := w.dm(ada, "asked for a Temporary Access Pass for you")
			code := w.livePasses(adaEntraID)[0].Code

			w.slack.ThrottleFor("views.open", tc.throttle)
			w.click(ada, dm, "Reveal pass")
			if tc.toldTo != "" {
				w.ephemeral(ada, tc.toldTo)
				if shown := w.modalsShowing(ada, code); shown != 0 {
					t.Fatalf("the pass was shown although the modal could not open")
				}
				if outcomes := w.revealOutcomes(); outcomes["throttled"] != 1 {
					t.Fatalf("reveal outcomes %v, want one throttled", outcomes)
				}
				if !strings.Contains(w.message(dm.Ref()).PlainText(), "Reveal pass") {
					t.Fatal("the DM no longer offers the reveal after a throttled click")
				}
				// The person waits the seconds they were told (Slack's window is wall-clock
				// time, so here the test waits it out too) and clicks again.
				time.Sleep(tc.throttle)
				w.click(ada, w.message(dm.Ref()), "Reveal pass")
			}
			w.view(ada, code)
			w.waitFor("the DM says revealed", func() bool { return strings.Contains(w.message(dm.Ref()).PlainText(), "Revealed") })
			b := button(t, dm, "Reveal pass")
			if _, err := w.slack.ClickStaleButton(w.ctx(), ada, dm.Ref(), b.ActionID, b.Value); err != nil {
				t.Fatal(err)
			}
			w.view(ada, "already revealed")
			if shown := w.modalsShowing(ada, code); shown != 1 {
				t.Fatalf("the pass appeared in %d modals, want exactly 1", shown)
			}
		})
	}
}

// TestRestartsWaitForSlacksTurnToConnect restarts replicas more often than Slack's Tier 1
// allows apps.connections.open (about one a minute, a burst of three): a rolling restart of
// three replicas, then a crash loop. Every start must wait for Slack's turn and connect; none
// may give up because Slack said "later", and none may earn a 429.
func TestRestartsWaitForSlacksTurnToConnect(t *testing.T) {
	w := newWorld(t, withRedis, withSlackSpeed(burstSpeed)) // Tier 1: a call every 3 s
	w.startReplica()
	w.startReplica() // three replicas: Tier 1's burst is spent
	for i := range 3 {
		w.restart() // waits (and fails the test) unless the restarted replica connects
		if code, body := w.get("/healthz"); code != 200 {
			t.Fatalf("restart %d: /healthz = %d %s", i+1, code, body)
		}
	}
	if n := w.slack.Served("apps.connections.open"); n < 6 {
		t.Fatalf("%d socket connections opened, want one per start (6)", n)
	}
	if n := w.slack.RateLimited("apps.connections.open"); n != 0 {
		t.Fatalf("Slack refused %d apps.connections.open with 429; tapbot must wait for its turn", n)
	}
	w.tap(manager, "<@UADA> 1h once after the restarts")
	w.approvalMessage(1)
}

// TestShutdownDoesNotWaitOnSlack stops tapbot while Slack holds back its posts (audit events,
// the sweeper's updates): shutdown takes TAP_SHUTDOWN_TIMEOUT and a few seconds, not as long as
// Slack's Retry-After; what was not posted is in the log and the store.
func TestShutdownDoesNotWaitOnSlack(t *testing.T) {
	w := newWorld(t, withEnv("TAP_AUDIT_CHANNEL", general), withEnv("TAP_SHUTDOWN_TIMEOUT", "1s"), withFastSweep)
	w.tap(manager, "<@UADA> 1h once new laptop")
	w.approvalMessage(1)
	w.slack.ThrottleFor("chat.postMessage", 90*time.Second)
	w.slack.ThrottleFor("chat.update", 90*time.Second)
	w.tap(manager, "ext@example.com 1h once contractor") // its audit event and approval post now wait
	w.longWait("the queue to form", 10*time.Second, func() bool {
		return w.metric(`tapbot_slack_calls_waiting{method="chat.postMessage"}`) > 0
	})
	start := time.Now()
	w.stop()
	// 1 s for in-flight work, 5 s for the audit queue's last posts, and slack for the rest.
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("shutdown took %v while Slack throttled; it must not wait on Slack's Retry-After", took)
	}
}

// TestSlowRevealDMIsSentOnce keeps the Reveal DM waiting on Slack for longer than the issuing
// replica's lease: the replica keeps the request while it waits, so no sweeper (its own or
// another's) takes the delivery over and sends the DM twice.
func TestSlowRevealDMIsSentOnce(t *testing.T) {
	w := newWorld(t, withRedis, withFastSweep)
	w.startReplica()
	w.tap(manager, "<@UADA> 1h once new laptop")
	m := w.approvalMessage(1)
	w.slack.ThrottleFor("conversations.open", 10*time.Second)
	w.click(approver, m, "Approve")
	w.longWait("the pass", 10*time.Second, func() bool { return len(w.livePasses(adaEntraID)) == 1 })
	// Five minutes pass on tapbot's clock, ten seconds at a time, while the DM still waits for
	// Slack: more than the lease (twice TAP_GRAPH_TIMEOUT plus 30 s), with heartbeats between.
	for range 30 {
		w.advance(10 * time.Second)
		time.Sleep(100 * time.Millisecond)
	}
	w.longWait("the Reveal DM", time.Minute, func() bool { return len(w.revealDMs(ada)) >= 1 })
	// Give a second delivery the time it would take: a sweep after the DM went out.
	time.Sleep(2 * time.Second)
	if n := len(w.revealDMs(ada)); n != 1 {
		t.Fatalf("Ada got %d Reveal DMs, want 1", n)
	}
}
