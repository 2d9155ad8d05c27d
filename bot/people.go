package bot

import (
	"context"
	"errors"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/tapbot/tapbot/approvals"
)

// People implements approvals.People with the Slack Web API.
type People struct {
	API *slack.Client
	// Profiles, when set, is the users.info cache the bot shares, so a request's lookups of one
	// person cost one call.
	Profiles *Profiles
}

var _ approvals.People = People{}

// Email implements approvals.People through users.info.
func (p People) Email(ctx context.Context, userID string) (string, error) {
	var u *slack.User
	var err error
	if p.Profiles != nil {
		u, err = p.Profiles.Get(ctx, userID)
	} else {
		u, err = p.API.GetUserInfoContext(ctx, userID)
	}
	if isSlackError(err, "user_not_found") {
		return "", approvals.Errorf(approvals.NotFound, "The person you named is not in this Slack workspace.")
	}
	if err != nil {
		return "", fmt.Errorf("users.info %s: %w", userID, err)
	}
	switch {
	case u.IsBot:
		return "", approvals.Errorf(approvals.Invalid, "The person you named is a bot; passes are for people.")
	case u.Deleted:
		return "", approvals.Errorf(approvals.Invalid, "The person you named has been deactivated in Slack.")
	case u.Profile.Email == "":
		return "", approvals.Errorf(approvals.NotFound,
			"Slack shows no email address for the person you named, so tapbot cannot find their Entra ID account. Use their email address or UPN instead of the mention.")
	}
	return u.Profile.Email, nil
}

// FindByEmail implements approvals.People through users.lookupByEmail.
func (p People) FindByEmail(ctx context.Context, email string) (string, error) {
	u, err := p.API.GetUserByEmailContext(ctx, email)
	if isSlackError(err, "users_not_found") {
		return "", approvals.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("users.lookupByEmail: %w", err)
	}
	if u.Deleted || u.IsBot {
		return "", approvals.ErrNotFound
	}
	return u.ID, nil
}

// GroupMembers implements approvals.People through usergroups.users.list.
func (p People) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	ids, err := p.API.GetUserGroupMembersContext(ctx, groupID)
	if err != nil {
		return nil, fmt.Errorf("usergroups.users.list %s: %w", groupID, err)
	}
	return ids, nil
}

// isSlackError reports whether err is a Web API error with the given code.
func isSlackError(err error, code string) bool {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err == code
	}
	return err != nil && err.Error() == code
}
