package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/config"
)

func TestFollowUpSettings(t *testing.T) {
	tests := []struct {
		name          string
		set           map[string]string
		remind, watch time.Duration
		revoke        bool
		wantErr       string
	}{
		{name: "defaults", remind: 30 * time.Minute, watch: time.Minute},
		{name: "set", set: map[string]string{"TAP_REMIND_AFTER": "2h", "TAP_WATCH_INTERVAL": "30s", "TAP_REVOKE_AFTER_REGISTRATION": "true"},
			remind: 2 * time.Hour, watch: 30 * time.Second, revoke: true},
		{name: "off", set: map[string]string{"TAP_REMIND_AFTER": "off", "TAP_WATCH_INTERVAL": "OFF"}, remind: -1, watch: -1},
		{name: "remind not a duration", set: map[string]string{"TAP_REMIND_AFTER": "soon"}, wantErr: `TAP_REMIND_AFTER: "soon" is not a duration; use a number and a unit such as 30s, 90m, 1h30m, 1d or 1d12h, from 1m to 30d, or off`},
		{name: "remind too short", set: map[string]string{"TAP_REMIND_AFTER": "10s"}, wantErr: `TAP_REMIND_AFTER: "10s" is too short; use from 1m to 30d, or off`},
		{name: "remind after the request expired", set: map[string]string{"TAP_REMIND_AFTER": "24h"}, wantErr: `TAP_REMIND_AFTER: "24h" is not shorter than TAP_REQUEST_TTL (the default 24h)`},
		{name: "the default remind after a short request TTL", set: map[string]string{"TAP_REQUEST_TTL": "20m"}, wantErr: `TAP_REMIND_AFTER: the default 30m is not shorter than TAP_REQUEST_TTL ("20m")`},
		{name: "remind after a typed request TTL", set: map[string]string{"TAP_REMIND_AFTER": "1d", "TAP_REQUEST_TTL": "48h"}, remind: 24 * time.Hour, watch: time.Minute},
		{name: "remind echoes both as typed", set: map[string]string{"TAP_REMIND_AFTER": "48h", "TAP_REQUEST_TTL": "2d"}, wantErr: `TAP_REMIND_AFTER: "48h" is not shorter than TAP_REQUEST_TTL ("2d")`},
		{name: "watch too often", set: map[string]string{"TAP_WATCH_INTERVAL": "500ms"}, wantErr: `TAP_WATCH_INTERVAL: "500ms" is too short; use from 1s to 1d, or off`},
		{name: "revoke not a bool", set: map[string]string{"TAP_REVOKE_AFTER_REGISTRATION": "sometimes"}, wantErr: `TAP_REVOKE_AFTER_REGISTRATION: "sometimes" is not true or false`},
		{name: "revoke without watching", set: map[string]string{"TAP_REVOKE_AFTER_REGISTRATION": "true", "TAP_WATCH_INTERVAL": "off"},
			wantErr: "TAP_REVOKE_AFTER_REGISTRATION: needs TAP_WATCH_INTERVAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(env(tt.set))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to start %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.RemindAfter != tt.remind || c.WatchInterval != tt.watch || c.RevokeAfterRegistration != tt.revoke {
				t.Fatalf("remind %s, watch %s, revoke %v; want %s, %s, %v", c.RemindAfter, c.WatchInterval, c.RevokeAfterRegistration, tt.remind, tt.watch, tt.revoke)
			}
		})
	}
}
