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
	SlackAppToken string
	SlackBotToken string
	SlackAPIURL   string
	GraphBaseURL  string
	RedisURL      string // empty: the embedded store
	// RedisReplicas is how many Redis replicas must acknowledge a reveal's claim (WAIT) before
	// the pass is shown (TAP_REDIS_REPLICAS); 0 waits for none.
	RedisReplicas    int
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

	GroupCacheTTL      time.Duration // how long Slack user group membership, and the Entra ID account of a Slack email, is trusted
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
	// TenantWatchInterval is how often Entra ID's audit log is read for passes made outside
	// tapbot; negative when the tenant watcher is off.
	TenantWatchInterval time.Duration
	// AuditLogRetention is how long the tenant keeps audit records (TAP_AUDIT_LOG_RETENTION).
	AuditLogRetention time.Duration
	// OwnAppID is AZURE_CLIENT_ID: the app whose passes in the audit log are tapbot's own.
	OwnAppID string

	// Onboarding asks each new hire's manager for a first-morning pass OnboardingNotice before
	// the hire date, starting at OnboardingStart (HH:MM, the manager's time). See onboarding.go.
	Onboarding       bool
	OnboardingNotice time.Duration
	OnboardingStart  string
}

// Error names the variable that is wrong and says how to fix it, in one line.
type Error struct {
	Var     string
	Problem string
}

func (e *Error) Error() string { return e.Var + ": " + e.Problem }

// Problems lists every *Error in err, in the order Load found them. Load joins them with
// errors.Join, so errors.As finds the first and Problems finds them all.
func Problems(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *Error:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

var (
	channelRE = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)
	memberRE  = regexp.MustCompile(`^[UWS][A-Z0-9]{2,}$`)
)

// loader reads variables and collects every problem, so one start reports them all.
type loader struct {
	getenv func(string) string
	errs   []error
	bad    map[string]bool
}

func (l *loader) get(name string) string { return strings.TrimSpace(l.getenv(name)) }

// report records err's problems; it returns whether there were none.
func (l *loader) report(err error) bool {
	if err == nil {
		return true
	}
	l.errs = append(l.errs, err)
	for _, e := range Problems(err) {
		l.bad[e.Var] = true
	}
	return false
}

func (l *loader) fail(name, problem string) { l.report(&Error{name, problem}) }

// ok reports whether none of names had a problem, for the checks that compare two variables.
func (l *loader) ok(names ...string) bool {
	for _, n := range names {
		if l.bad[n] {
			return false
		}
	}
	return true
}

// duration reads one duration setting into *dst, leaving its default there when it is wrong.
func (l *loader) duration(dst *time.Duration, s DurationSetting) {
	*dst = mustParse(s.Default)
	if d, err := s.Read(l.get(s.Name)); l.report(err) {
		*dst = d
	}
}

// Load reads the configuration through getenv (os.Getenv in production). It reports every
// problem at once: the error joins one *Error per wrong or missing variable (see Problems). The
// Config holds every value that was read without a problem, and defaults (or nothing) for the
// others, so tapbot doctor can still run each check that depends on none of them.
func Load(getenv func(string) string) (Config, error) {
	l := &loader{getenv: getenv, bad: map[string]bool{}}
	var c Config
	c.loadSlack(l)
	c.loadGraph(l)
	c.loadApprovals(l)
	c.loadStore(l)
	c.loadOperations(l)
	c.loadTrust(l)
	c.loadFollowUp(l)
	c.loadOnboarding(l)
	return c, errors.Join(l.errs...)
}

func (c *Config) loadSlack(l *loader) {
	switch s := l.secret("SLACK_APP_TOKEN"); {
	case l.bad[s.from]:
	case s.value == "":
		l.fail("SLACK_APP_TOKEN", "required: the app-level token (xapp-...) with the connections:write scope, from your Slack app's Basic Information page")
	case isExample(s.value):
		s.problem(l, stillExample("", "use the app-level token (xapp-...) with the connections:write scope, from your Slack app's Basic Information page"))
	case !strings.HasPrefix(s.value, "xapp-"):
		s.problem(l, "must be an app-level token starting with xapp- (a bot token goes in SLACK_BOT_TOKEN)")
	default:
		c.SlackAppToken = s.value
	}
	switch s := l.secret("SLACK_BOT_TOKEN"); {
	case l.bad[s.from]:
	case s.value == "":
		l.fail("SLACK_BOT_TOKEN", "required: the bot token (xoxb-...) from your Slack app's OAuth & Permissions page")
	case isExample(s.value):
		s.problem(l, stillExample("", "use the bot token (xoxb-...) from your Slack app's OAuth & Permissions page"))
	case !strings.HasPrefix(s.value, "xoxb-"):
		s.problem(l, "must be a bot token starting with xoxb-")
	default:
		c.SlackBotToken = s.value
	}
	const slackDefault = "https://slack.com/api/"
	c.SlackAPIURL = slackDefault
	if v, err := baseURL("SLACK_API_URL", l.get("SLACK_API_URL"), slackDefault); l.report(err) {
		c.SlackAPIURL = v
		if !strings.HasSuffix(c.SlackAPIURL, "/") {
			c.SlackAPIURL += "/"
		}
	}
	switch v := l.get("TAP_SLACK_PACING"); strings.ToLower(v) {
	case "", "on":
		c.SlackPacing = true
	case "off":
	default:
		c.SlackPacing = true
		l.fail("TAP_SLACK_PACING", fmt.Sprintf("%q is neither on (pace Slack calls to Slack's published rate limits, the default) nor off (send at once and wait only when Slack answers 429)", v))
	}
}

// graphDefault is Microsoft Graph's v1.0 endpoint, GRAPH_BASE_URL's default.
const graphDefault = "https://graph.microsoft.com/v1.0"

func (c *Config) loadGraph(l *loader) {
	c.GraphBaseURL = graphDefault
	if v, err := baseURL("GRAPH_BASE_URL", l.get("GRAPH_BASE_URL"), graphDefault); l.report(err) {
		c.GraphBaseURL = strings.TrimRight(v, "/")
	}
	checkAzure(l)
	c.GraphConcurrency = 8
	if v := l.get("TAP_GRAPH_CONCURRENCY"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 256 {
			l.fail("TAP_GRAPH_CONCURRENCY", fmt.Sprintf("%q is not a number of calls from 1 to 256", v))
		} else {
			c.GraphConcurrency = n
		}
	}
	l.duration(&c.GraphTimeout, GraphTimeout)
}

func (c *Config) loadApprovals(l *loader) {
	switch v := l.get("TAP_APPROVAL_CHANNEL"); {
	case v == "":
		l.fail("TAP_APPROVAL_CHANNEL", "required: the ID (like C0123ABCD, from the channel's details) of the private channel where approvers decide")
	case isExample(v):
		l.fail("TAP_APPROVAL_CHANNEL", stillExample(v, "use the ID of your approvals channel, at the bottom of the channel's details"))
	case !channelRE.MatchString(v):
		l.fail("TAP_APPROVAL_CHANNEL", fmt.Sprintf("%q is not a channel ID; use the ID like C0123ABCD from the channel's details, not its name", v))
	default:
		c.ApprovalChannel = v
	}
	if ids, err := members("TAP_APPROVERS", l.get("TAP_APPROVERS")); l.report(err) {
		if len(ids) == 0 {
			l.fail("TAP_APPROVERS", "required: a comma-separated list of Slack user IDs (U...) and user group IDs (S...) who may approve")
		}
		c.Approvers = ids
	}
	if ids, err := members("TAP_REQUESTERS", l.get("TAP_REQUESTERS")); l.report(err) {
		c.Requesters = ids
	}
	l.duration(&c.DefaultLifetime, DefaultLifetime)
	l.duration(&c.MaxLifetime, MaxLifetime)
	if l.ok(DefaultLifetime.Name, MaxLifetime.Name) && c.DefaultLifetime > c.MaxLifetime {
		l.fail(DefaultLifetime.Name, fmt.Sprintf("%s is longer than %s (%s); use a shorter one, or raise %[2]s",
			shown(l.get, DefaultLifetime), MaxLifetime.Name, shown(l.get, MaxLifetime)))
	}
	l.duration(&c.RequestTTL, RequestTTL)
}

// maxRedisReplicas bounds TAP_REDIS_REPLICAS: more than a handful of replicas of one master is
// no deployment tapbot's store needs, and a typo such as 11 for 1 would stall every reveal.
const maxRedisReplicas = 5

func (c *Config) loadStore(l *loader) {
	redis := l.redisURL()
	c.RedisURL = redis.value
	if v := l.get("TAP_REDIS_REPLICAS"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n < 0 || n > maxRedisReplicas:
			l.fail("TAP_REDIS_REPLICAS", fmt.Sprintf("%q is not a number of replicas from 0 to %d", v, maxRedisReplicas))
		case n > 0 && !redis.set:
			l.fail("TAP_REDIS_REPLICAS", "needs REDIS_URL: the embedded store has no replicas to wait for")
		default:
			c.RedisReplicas = n
		}
	}
	switch keys := l.secret("TAP_ENCRYPTION_KEY"); {
	case l.bad[keys.from]:
	case keys.value == "" && redis.set:
		l.fail("TAP_ENCRYPTION_KEY", "required when REDIS_URL is set: base64 of 32 random bytes (make one with: openssl rand -base64 32); passes are encrypted with it in Redis")
	case keys.value == "":
	case isExample(keys.value):
		keys.problem(l, stillExample("", "make a key with: openssl rand -base64 32"))
	default:
		if parsed, err := approvals.ParseKeys(keys.value); err != nil {
			keys.problem(l, err.Error())
		} else {
			c.EncryptionKeys = parsed
		}
	}
}

// redisSetting is REDIS_URL as read: value is "" unless it is a usable URL; set says whether
// one was given at all (wrong or not).
type redisSetting struct {
	value string
	set   bool
}

func (l *loader) redisURL() redisSetting {
	s := l.secret("REDIS_URL")
	switch {
	case l.bad[s.from]:
		return redisSetting{set: true}
	case s.value == "":
		return redisSetting{}
	case isExample(s.value):
		s.problem(l, stillExample("", "use the URL of your Redis, with its password, e.g. rediss://:password@redis:6380/0"))
	default:
		if u, err := url.Parse(s.value); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			s.problem(l, "must be a redis://, rediss:// or unix:// URL, e.g. redis://:password@redis:6379/0")
		} else {
			return redisSetting{value: s.value, set: true}
		}
	}
	return redisSetting{set: true}
}

func (c *Config) loadOperations(l *loader) {
	c.HTTPAddr = ":8080"
	if v := l.get("TAP_HTTP_ADDR"); v != "" {
		if _, _, err := net.SplitHostPort(v); err != nil {
			l.fail("TAP_HTTP_ADDR", fmt.Sprintf("%q is not a listen address; use host:port or :port, e.g. :8080", v))
		} else {
			c.HTTPAddr = v
		}
	}
	l.duration(&c.ShutdownTimeout, ShutdownTimeout)
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
func checkAzure(l *loader) {
	principal := l.get("AZURE_CLIENT_SECRET") != "" || l.get("AZURE_CLIENT_CERTIFICATE_PATH") != "" || l.get("AZURE_FEDERATED_TOKEN_FILE") != ""
	for _, name := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID"} {
		what := map[string]string{"AZURE_TENANT_ID": "Directory (tenant) ID", "AZURE_CLIENT_ID": "Application (client) ID"}[name]
		switch v := l.get(name); {
		case v == "" && principal:
			l.fail(name, "required with AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE: the Entra app registration's "+what)
		case isExample(v):
			l.fail(name, stillExample(v, "use the "+what+" from the app registration's Overview page in the Entra admin center"))
		}
	}
	if isExample(l.get("AZURE_CLIENT_SECRET")) {
		l.fail("AZURE_CLIENT_SECRET", stillExample("", "use the client secret's Value from App registrations → tapbot's app → Certificates & secrets"))
	}
	if h := l.get("AZURE_AUTHORITY_HOST"); h != "" {
		if u, err := url.Parse(h); err != nil || u.Scheme != "https" || u.Host == "" {
			l.fail("AZURE_AUTHORITY_HOST", fmt.Sprintf("%q must be an https URL such as https://login.microsoftonline.com/", h))
		}
	}
}

func members(name, v string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if isExample(part) {
			return nil, &Error{name, stillExample(part, "use member IDs (profile → ⋯ → Copy member ID, U...) and user group IDs (S...) of your workspace")}
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
func (c *Config) loadTrust(l *loader) {
	l.duration(&c.GroupCacheTTL, GroupCacheTTL)
	if v, err := boolean("TAP_ALLOW_SELF_REQUEST", l.get("TAP_ALLOW_SELF_REQUEST")); l.report(err) {
		c.AllowSelfRequest = v
	}
	if v, err := boolean("TAP_ROUTE_TO_MANAGER", l.get("TAP_ROUTE_TO_MANAGER")); l.report(err) {
		c.RouteToManager = v
	}
	var groups []string
	for _, g := range strings.Split(l.get("TAP_PROTECTED_GROUPS"), ",") {
		if g = strings.TrimSpace(g); g == "" {
			continue
		}
		if isExample(g) {
			l.fail("TAP_PROTECTED_GROUPS", stillExample(g, "use the object IDs of your protected Entra groups"))
			groups = nil
			break
		}
		if !guidRE.MatchString(g) {
			l.fail("TAP_PROTECTED_GROUPS", fmt.Sprintf("%q is not an Entra group object ID (a GUID such as 00000000-0000-0000-0000-000000000000)", g))
			groups = nil
			break
		}
		groups = append(groups, g)
	}
	c.ProtectedGroups = groups
	if ids, err := members("TAP_PROTECTED_APPROVERS", l.get("TAP_PROTECTED_APPROVERS")); l.report(err) {
		c.ProtectedApprovers = ids
	}
	c.RatePerRequester = 10
	if v := l.get("TAP_RATE_PER_REQUESTER"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			l.fail("TAP_RATE_PER_REQUESTER", fmt.Sprintf("%q is not a number of requests per hour, 1 or more", v))
		} else {
			c.RatePerRequester = n
		}
	}
	if v := l.get("TAP_AUDIT_CHANNEL"); v != "" && isExample(v) {
		l.fail("TAP_AUDIT_CHANNEL", stillExample(v, "use the ID of your audit channel, at the bottom of the channel's details, or leave it unset"))
	} else if v != "" && !channelRE.MatchString(v) {
		l.fail("TAP_AUDIT_CHANNEL", fmt.Sprintf("%q is not a channel ID; use the ID like C0123ABCD from the channel's details", v))
	} else {
		c.AuditChannel = v
	}
	l.duration(&c.AuditRetention, AuditRetention)
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

// Store is the configuration of a command that only reads the store, tapbot audit: REDIS_URL (or
// REDIS_URL_FILE) and nothing else, so an auditor need not hold the bot's Slack tokens.
type Store struct {
	RedisURL string // empty: the embedded store
}

// LoadStore reads Store through getenv; its errors are Load's for the same variables.
func LoadStore(getenv func(string) string) (Store, error) {
	l := &loader{getenv: getenv, bad: map[string]bool{}}
	return Store{RedisURL: l.redisURL().value}, errors.Join(l.errs...)
}

// Passes is the configuration of tapbot passes, which reads Entra ID's audit log and the
// store: REDIS_URL, GRAPH_BASE_URL and the AZURE_* sign-in, without the bot's Slack tokens.
type Passes struct {
	RedisURL     string // empty: the embedded store, which keeps nothing between runs
	GraphBaseURL string
	OwnAppID     string // AZURE_CLIENT_ID
}

// LoadPasses reads Passes through getenv; its errors are Load's for the same variables.
func LoadPasses(getenv func(string) string) (Passes, error) {
	l := &loader{getenv: getenv, bad: map[string]bool{}}
	p := Passes{RedisURL: l.redisURL().value, OwnAppID: l.get("AZURE_CLIENT_ID"), GraphBaseURL: graphDefault}
	if v, err := baseURL("GRAPH_BASE_URL", l.get("GRAPH_BASE_URL"), graphDefault); l.report(err) {
		p.GraphBaseURL = strings.TrimRight(v, "/")
	}
	checkAzure(l)
	return p, errors.Join(l.errs...)
}
