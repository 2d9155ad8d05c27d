package bot

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/slack-go/slack"

	"github.com/tapbot/tapbot/slackrate"
)

// TestDefiniteRefusal: a pass goes back to the store only when Slack certainly did not show
// it; any other failure of the update may have shown it.
func TestDefiniteRefusal(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"view gone", slack.SlackErrorResponse{Err: "not_found"}, true},
		{"hash conflict", fmt.Errorf("update: %w", slack.SlackErrorResponse{Err: "hash_conflict"}), true},
		{"bad arguments", slack.SlackErrorResponse{Err: "invalid_arguments"}, true},
		{"code as a plain error", errors.New("not_found"), true},
		{"throttled by Slack", &slack.RateLimitedError{}, true},
		{"held back by the pacer", &slackrate.ThrottledError{Method: "views.update"}, true},
		{"connection reset", &url.Error{Op: "Post", URL: "https://slack.com/api/views.update", Err: errors.New("read: connection reset by peer")}, false},
		{"timeout", context.DeadlineExceeded, false},
		{"Slack unsure", slack.SlackErrorResponse{Err: "internal_error"}, false},
		{"Slack failed", slack.SlackErrorResponse{Err: "fatal_error"}, false},
		{"an HTTP 503", slack.StatusCodeError{Code: 503, Status: "Service Unavailable"}, false},
		{"unknown code", slack.SlackErrorResponse{Err: "something_new"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := definiteRefusal(tt.err); got != tt.want {
				t.Fatalf("definiteRefusal(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
