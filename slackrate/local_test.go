package slackrate_test

import (
	"testing"

	"github.com/tapbot/tapbot/slackrate"
	"github.com/tapbot/tapbot/slackrate/sharedtest"
)

func TestLocalContract(t *testing.T) {
	sharedtest.Run(t, func(*testing.T) slackrate.Shared { return slackrate.NewLocal() })
}
