package bot

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/tapbot/tapbot/slackrate"
)

func TestHealthyAllowsAMinuteOfReconnecting(t *testing.T) {
	tests := []struct {
		name      string
		connected bool
		downFor   time.Duration
		want      bool
	}{
		{"connected", true, 0, true},
		{"reconnecting for 5s", false, 5 * time.Second, true},
		{"down for 61s", false, 61 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(Config{})
			if tt.connected {
				b.onConnected()
			} else {
				b.downSince.Store(time.Now().Add(-tt.downFor).UnixNano())
			}
			if got := b.Healthy(); got != tt.want {
				t.Fatalf("Healthy() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestHealthyWhileWaitingForSlacksTurnToConnect: a start that queues for apps.connections.open
// (Tier 1, about one a minute; a crash loop of three replicas waits minutes) is not wedged, so
// /healthz must not have the process killed for it.
func TestHealthyWhileWaitingForSlacksTurnToConnect(t *testing.T) {
	shared := slackrate.NewLocal()
	limits := slackrate.Published()
	limits.Methods["apps.connections.open"] = slackrate.Bucket{Every: time.Hour, Burst: 1}
	pacer := slackrate.New(slackrate.Options{Shared: shared, Limits: &limits})
	// Another replica took this hour's connection.
	if _, err := shared.TakeSlackCall(context.Background(), "slack:apps.connections.open", time.Hour, 1); err != nil {
		t.Fatal(err)
	}
	b := New(Config{Pacer: pacer})
	b.downSince.Store(time.Now().Add(-90 * time.Second).UnixNano())
	if b.Healthy() {
		t.Fatal("Healthy() after 90s down with no connection waiting; want false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1:1/api/apps.connections.open", nil)
	done := make(chan struct{})
	go func() { defer close(done); _, _ = pacer.Do(req) }()
	deadline := time.Now().Add(5 * time.Second)
	for pacer.Waiting("apps.connections.open") == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !b.Healthy() {
		t.Fatal("Healthy() = false while the socket waits for Slack's turn to connect")
	}
	cancel()
	<-done
}
