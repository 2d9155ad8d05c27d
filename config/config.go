// Package config reads tapbot's configuration from the environment (and an optional .env file),
// so the bot and its tools share one definition and one set of error messages.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// Config is everything tapbot reads at start. Azure credentials are not here: azidentity reads
// its own variables (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, ...).
type Config struct {
	SlackAppToken    string
	SlackBotToken    string
	SlackAPIURL      string
	GraphBaseURL     string
	RedisURL         string // empty: the embedded store
	ApprovalChannel  string
	Approvers        []string
	Requesters       []string
	DefaultLifetime  time.Duration
	MaxLifetime      time.Duration
	RequestTTL       time.Duration
	EncryptionKeys   [][]byte // first encrypts, all decrypt; empty with the embedded store
	HTTPAddr         string
	GraphConcurrency int           // Graph calls in flight at once
	GraphTimeout     time.Duration // per Graph HTTP attempt
	ShutdownTimeout  time.Duration // how long in-flight work may go on after SIGTERM
	// SlackPacing paces Slack Web API calls to Slack's published rate limits (TAP_SLACK_PACING,
	// default on); off sends at once and waits only when Slack answers 429.
	SlackPacing bool

	GroupCacheTTL      time.Duration // how long Slack user group membership is trusted
	AllowSelfRequest   bool
	RouteToManager     bool
	ProtectedGroups    []string // Entra group object IDs
	ProtectedApprovers []string
	RatePerRequester   int
	AuditChannel       string
	AuditRetention     time.Duration

	// RemindAfter is how long a request waits before tapbot bumps it to its approvers;
	// negative when reminders are off. See followup.go.
	RemindAfter time.Duration
	// WatchInterval is how often a revealed pass's person is looked at in Entra ID; negative
	// when watching is off.
	WatchInterval           time.Duration
	RevokeAfterRegistration bool
}

// Error names the variable that is wrong and says how to fix it, in one line.
type Error struct {
	Var     string
	Problem string
}

func (e *Error) Error() string { return e.Var + ": " + e.Problem }

var (
	channelRE = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)
	memberRE  = regexp.MustCompile(`^[UWS][A-Z0-9]{2,}$`)
)

// Load reads the configuration through getenv (os.Getenv in production). The first problem found
// is returned as an *Error.
func Load(getenv func(string) string) (Config, error) {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	c := Config{
		SlackAppToken:   get("SLACK_APP_TOKEN"),
		SlackBotToken:   get("SLACK_BOT_TOKEN"),
		SlackAPIURL:     get("SLACK_API_URL"),
		GraphBaseURL:    get("GRAPH_BASE_URL"),
		RedisURL:        get("REDIS_URL"),
		ApprovalChannel: get("TAP_APPROVAL_CHANNEL"),
		HTTPAddr:        get("TAP_HTTP_ADDR"),
	}
	switch {
	case c.SlackAppToken == "":
		return c, &Error{"SLACK_APP_TOKEN", "required: the app-level token (xapp-...) with the connections:write scope, from your Slack app's Basic Information page"}
	case !strings.HasPrefix(c.SlackAppToken, "xapp-"):
		return c, &Error{"SLACK_APP_TOKEN", "must be an app-level token starting with xapp- (a bot token goes in SLACK_BOT_TOKEN)"}
	case c.SlackBotToken == "":
		return c, &Error{"SLACK_BOT_TOKEN", "required: the bot token (xoxb-...) from your Slack app's OAuth & Permissions page"}
	case !strings.HasPrefix(c.SlackBotToken, "xoxb-"):
		return c, &Error{"SLACK_BOT_TOKEN", "must be a bot token starting with xoxb-"}
	}
	var err error
	if c.SlackAPIURL, err = baseURL("SLACK_API_URL", c.SlackAPIURL, "https://slack.com/api/"); err != nil {
		return c, err
	}
	if !strings.HasSuffix(c.SlackAPIURL, "/") {
		c.SlackAPIURL += "/"
	}
	if c.GraphBaseURL, err = baseURL("GRAPH_BASE_URL", c.GraphBaseURL, "https://graph.microsoft.com/v1.0"); err != nil {
		return c, err
	}
	c.GraphBaseURL = strings.TrimRight(c.GraphBaseURL, "/")
	if err := checkAzure(get); err != nil {
		return c, err
	}
	if c.ApprovalChannel == "" {
		return c, &Error{"TAP_APPROVAL_CHANNEL", "required: the ID (like C0123ABCD, from the channel's details) of the private channel where approvers decide"}
	}
	if !channelRE.MatchString(c.ApprovalChannel) {
		return c, &Error{"TAP_APPROVAL_CHANNEL", fmt.Sprintf("%q is not a channel ID; use the ID like C0123ABCD from the channel's details, not its name", c.ApprovalChannel)}
	}
	if c.Approvers, err = members("TAP_APPROVERS", get("TAP_APPROVERS")); err != nil {
		return c, err
	}
	if len(c.Approvers) == 0 {
		return c, &Error{"TAP_APPROVERS", "required: a comma-separated list of Slack user IDs (U...) and user group IDs (S...) who may approve"}
	}
	if c.Requesters, err = members("TAP_REQUESTERS", get("TAP_REQUESTERS")); err != nil {
		return c, err
	}
	if c.DefaultLifetime, err = DefaultLifetime.Read(get(DefaultLifetime.Name)); err != nil {
		return c, err
	}
	if c.MaxLifetime, err = MaxLifetime.Read(get(MaxLifetime.Name)); err != nil {
		return c, err
	}
	if c.DefaultLifetime > c.MaxLifetime {
		return c, &Error{DefaultLifetime.Name, fmt.Sprintf("%s is longer than %s (%s); use a shorter one, or raise %[2]s",
			shown(get, DefaultLifetime), MaxLifetime.Name, shown(get, MaxLifetime))}
	}
	if c.RequestTTL, err = RequestTTL.Read(get(RequestTTL.Name)); err != nil {
		return c, err
	}
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			return c, &Error{"REDIS_URL", "must be a redis://, rediss:// or unix:// URL, e.g. redis://:password@redis:6379/0"}
		}
		keys := get("TAP_ENCRYPTION_KEY")
		if keys == "" {
			return c, &Error{"TAP_ENCRYPTION_KEY", "required when REDIS_URL is set: base64 of 32 random bytes (make one with: openssl rand -base64 32); passes are encrypted with it in Redis"}
		}
		if c.EncryptionKeys, err = approvals.ParseKeys(keys); err != nil {
			return c, &Error{"TAP_ENCRYPTION_KEY", err.Error()}
		}
	} else if keys := get("TAP_ENCRYPTION_KEY"); keys != "" {
		if c.EncryptionKeys, err = approvals.ParseKeys(keys); err != nil {
			return c, &Error{"TAP_ENCRYPTION_KEY", err.Error()}
		}
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = ":8080"
	}
	c.GraphConcurrency = 8
	if v := get("TAP_GRAPH_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 256 {
			return c, &Error{"TAP_GRAPH_CONCURRENCY", fmt.Sprintf("%q is not a number of calls from 1 to 256", v)}
		}
		c.GraphConcurrency = n
	}
	if c.GraphTimeout, err = GraphTimeout.Read(get(GraphTimeout.Name)); err != nil {
		return c, err
	}
	if c.ShutdownTimeout, err = ShutdownTimeout.Read(get(ShutdownTimeout.Name)); err != nil {
		return c, err
	}
	switch v := strings.ToLower(get("TAP_SLACK_PACING")); v {
	case "", "on":
		c.SlackPacing = true
	case "off":
	default:
		return c, &Error{"TAP_SLACK_PACING", fmt.Sprintf("%q is neither on (pace Slack calls to Slack's published rate limits, the default) nor off (send at once and wait only when Slack answers 429)", v)}
	}
	if err := c.loadTrust(get); err != nil {
		return c, err
	}
	if err := c.loadFollowUp(get); err != nil {
		return c, err
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return c, &Error{"TAP_HTTP_ADDR", fmt.Sprintf("%q is not a listen address; use host:port or :port, e.g. :8080", c.HTTPAddr)}
	}
	return c, nil
}

func baseURL(name, v, def string) (string, error) {
	if v == "" {
		return def, nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", &Error{name, fmt.Sprintf("%q is not an http(s) URL; leave it unset for %s", v, def)}
	}
	return v, nil
}

// checkAzure catches half-configured service principals early; with no secret, certificate or
// federated token azidentity falls back to managed identity, which only the first token tells.
func checkAzure(get func(string) string) error {
	principal := get("AZURE_CLIENT_SECRET") != "" || get("AZURE_CLIENT_CERTIFICATE_PATH") != "" || get("AZURE_FEDERATED_TOKEN_FILE") != ""
	if !principal {
		return nil
	}
	for _, name := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID"} {
		if get(name) == "" {
			return &Error{name, "required with AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE: the Entra app registration's " +
				map[string]string{"AZURE_TENANT_ID": "Directory (tenant) ID", "AZURE_CLIENT_ID": "Application (client) ID"}[name]}
		}
	}
	if h := get("AZURE_AUTHORITY_HOST"); h != "" {
		if u, err := url.Parse(h); err != nil || u.Scheme != "https" || u.Host == "" {
			return &Error{"AZURE_AUTHORITY_HOST", fmt.Sprintf("%q must be an https URL such as https://login.microsoftonline.com/", h)}
		}
	}
	return nil
}

func members(name, v string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !memberRE.MatchString(part) {
			return nil, &Error{name, fmt.Sprintf("%q is not a Slack user ID (U...) or user group ID (S...); names and @handles do not work here", part)}
		}
		out = append(out, part)
	}
	return out, nil
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// loadTrust reads who may do what beyond the approvers, and where the audit trail goes.
func (c *Config) loadTrust(get func(string) string) error {
	var err error
	if c.GroupCacheTTL, err = GroupCacheTTL.Read(get(GroupCacheTTL.Name)); err != nil {
		return err
	}
	if c.AllowSelfRequest, err = boolean("TAP_ALLOW_SELF_REQUEST", get("TAP_ALLOW_SELF_REQUEST")); err != nil {
		return err
	}
	if c.RouteToManager, err = boolean("TAP_ROUTE_TO_MANAGER", get("TAP_ROUTE_TO_MANAGER")); err != nil {
		return err
	}
	for _, g := range strings.Split(get("TAP_PROTECTED_GROUPS"), ",") {
		if g = strings.TrimSpace(g); g == "" {
			continue
		}
		if !guidRE.MatchString(g) {
			return &Error{"TAP_PROTECTED_GROUPS", fmt.Sprintf("%q is not an Entra group object ID (a GUID such as 00000000-0000-0000-0000-000000000000)", g)}
		}
		c.ProtectedGroups = append(c.ProtectedGroups, g)
	}
	if c.ProtectedApprovers, err = members("TAP_PROTECTED_APPROVERS", get("TAP_PROTECTED_APPROVERS")); err != nil {
		return err
	}
	c.RatePerRequester = 10
	if v := get("TAP_RATE_PER_REQUESTER"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return &Error{"TAP_RATE_PER_REQUESTER", fmt.Sprintf("%q is not a number of requests per hour, 1 or more", v)}
		}
		c.RatePerRequester = n
	}
	if c.AuditChannel = get("TAP_AUDIT_CHANNEL"); c.AuditChannel != "" && !channelRE.MatchString(c.AuditChannel) {
		return &Error{"TAP_AUDIT_CHANNEL", fmt.Sprintf("%q is not a channel ID; use the ID like C0123ABCD from the channel's details", c.AuditChannel)}
	}
	if c.AuditRetention, err = AuditRetention.Read(get(AuditRetention.Name)); err != nil {
		return err
	}
	return nil
}

func boolean(name, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "false", "0", "no":
		return false, nil
	case "true", "1", "yes":
		return true, nil
	}
	return false, &Error{name, fmt.Sprintf("%q is not true or false", v)}
}

// shown is a duration setting's value for a message that compares it with another: as typed,
// or its default.
func shown(get func(string) string, s DurationSetting) string {
	if v := get(s.Name); v != "" {
		return fmt.Sprintf("%q", v)
	}
	return "the default " + s.Default
}

// LoadDotEnv sets variables from a KEY=VALUE file that are not already set in the environment,
// so a real environment always wins. A missing file is not an error.
func LoadDotEnv(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return fmt.Errorf("%s line %d: want KEY=VALUE", path, n)
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		} else if i := strings.Index(value, " #"); i >= 0 {
			value = strings.TrimSpace(value[:i]) // an unquoted value ends at a comment
		}
		if _, set := os.LookupEnv(key); !set {
			if err := os.Setenv(key, value); err != nil {
				return fmt.Errorf("%s line %d: %w", path, n, err)
			}
		}
	}
	return sc.Err()
}
