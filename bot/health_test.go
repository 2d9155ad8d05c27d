package bot

import (
	"testing"
	"time"
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
