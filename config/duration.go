package config

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ParseDuration reads a duration the way every tapbot variable and flag takes one: Go's notation
// (300ms, 30s, 90m, 1h30m, 1.5h) plus days of 24 hours (1d, 1d12h, 7d), in any letter case. It
// does not bound the value: each setting has its own range (DurationSetting).
func ParseDuration(s string) (time.Duration, error) {
	in := strings.ToLower(strings.TrimSpace(s))
	if in == "" {
		return 0, errors.New("empty duration")
	}
	sign := time.Duration(1)
	if in[0] == '-' || in[0] == '+' {
		if in[0] == '-' {
			sign = -1
		}
		in = in[1:]
	}
	if in == "0" {
		return 0, nil // Go's one unitless duration
	}
	isNum := func(c byte) bool { return c >= '0' && c <= '9' || c == '.' }
	var total time.Duration
	var goPart strings.Builder // everything but days, for time.ParseDuration
	for in != "" {
		i := 0
		for i < len(in) && isNum(in[i]) {
			i++
		}
		j := i
		for j < len(in) && !isNum(in[j]) {
			j++
		}
		num, unit := in[:i], in[i:j]
		in = in[j:]
		if num == "" || unit == "" {
			return 0, fmt.Errorf("%q is not a number followed by a unit", s)
		}
		if unit != "d" {
			goPart.WriteString(num + unit)
			continue
		}
		hours, err := time.ParseDuration(num + "h")
		if err != nil || hours > math.MaxInt64/24 {
			return 0, fmt.Errorf("%q has a bad number of days", s)
		}
		if total += 24 * hours; total < 0 {
			return 0, fmt.Errorf("%q is too large", s)
		}
	}
	if goPart.Len() > 0 {
		d, err := time.ParseDuration(goPart.String())
		if err != nil {
			return 0, fmt.Errorf("%q: %w", s, err)
		}
		if total += d; total < 0 {
			return 0, fmt.Errorf("%q is too large", s)
		}
	}
	return sign * total, nil
}

// DurationSetting is one duration a variable or a flag takes: its default and the range it
// accepts, written as the README writes them. Every duration shares ParseDuration's grammar;
// the range is each one's own.
type DurationSetting struct {
	Name         string // the variable or flag, as error messages name it
	Default      string // used when the value is empty
	Min, Max     string // inclusive
	Off          bool   // "off" is accepted, and read as -1
	WholeMinutes bool   // a pass's lifetime: Entra ID counts it in whole minutes
}

// Range says what the setting accepts, e.g. "from 1m to 30d, or off".
func (s DurationSetting) Range() string {
	r := "from " + s.Min + " to " + s.Max
	if s.Off {
		r += ", or off"
	}
	return r
}

// Read parses v, the empty string being the default. Its errors are *Error values that name the
// setting, echo v as it was typed, and give the range.
func (s DurationSetting) Read(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return mustParse(s.Default), nil
	}
	if s.Off && strings.EqualFold(v, "off") {
		return -1, nil
	}
	d, err := ParseDuration(v)
	if err != nil {
		return 0, &Error{s.Name, fmt.Sprintf("%q is not a duration; use a number and a unit such as 30s, 90m, 1h30m, 1d or 1d12h, %s", v, s.Range())}
	}
	switch {
	case d < mustParse(s.Min):
		return 0, &Error{s.Name, fmt.Sprintf("%q is too short; use %s", v, s.Range())}
	case d > mustParse(s.Max):
		return 0, &Error{s.Name, fmt.Sprintf("%q is too long; use %s", v, s.Range())}
	case s.WholeMinutes && d%time.Minute != 0:
		return 0, &Error{s.Name, fmt.Sprintf("%q is not a whole number of minutes, which is how Entra ID counts a pass's lifetime; use %s in minutes, hours or days", v, s.Range())}
	}
	return d, nil
}

func mustParse(s string) time.Duration {
	d, err := ParseDuration(s)
	if err != nil {
		panic("config: bad built-in duration " + s)
	}
	return d
}

// The duration settings, with the ranges README.md's configuration table gives.
var (
	// A pass lives from 10 minutes to 30 days in Entra ID (Graph's lifetimeInMinutes); the
	// tenant's Temporary Access Pass policy narrows that further at run time.
	DefaultLifetime = DurationSetting{Name: "TAP_DEFAULT_LIFETIME", Default: "1h", Min: "10m", Max: "30d", WholeMinutes: true}
	MaxLifetime     = DurationSetting{Name: "TAP_MAX_LIFETIME", Default: "8h", Min: "10m", Max: "30d", WholeMinutes: true}
	RequestTTL      = DurationSetting{Name: "TAP_REQUEST_TTL", Default: "24h", Min: "5m", Max: "30d"}
	RemindAfter     = DurationSetting{Name: "TAP_REMIND_AFTER", Default: "30m", Min: "1m", Max: "30d", Off: true}
	WatchInterval   = DurationSetting{Name: "TAP_WATCH_INTERVAL", Default: "1m", Min: "1s", Max: "1d", Off: true}
	// Graph's reports API allows about 5 requests per 10 s per tenant; one replica reads per
	// interval, so even 1s stays within it (with Retry-After honoured).
	TenantWatchInterval = DurationSetting{Name: "TAP_TENANT_WATCH_INTERVAL", Default: "5m", Min: "1s", Max: "1d", Off: true}
	// Entra ID keeps audit records 7 days (Free) or 30 days (P1/P2).
	AuditLogRetention = DurationSetting{Name: "TAP_AUDIT_LOG_RETENTION", Default: "7d", Min: "1d", Max: "30d"}
	// A person removed from a group keeps the group's rights for up to this long.
	GroupCacheTTL   = DurationSetting{Name: "TAP_GROUP_CACHE_TTL", Default: "5m", Min: "1s", Max: "1d"}
	AuditRetention  = DurationSetting{Name: "TAP_AUDIT_RETENTION", Default: "90d", Min: "1d", Max: "3650d"}
	GraphTimeout    = DurationSetting{Name: "TAP_GRAPH_TIMEOUT", Default: "30s", Min: "100ms", Max: "5m"}
	ShutdownTimeout = DurationSetting{Name: "TAP_SHUTDOWN_TIMEOUT", Default: "20s", Min: "1s", Max: "10m"}
	// AuditSince is tapbot audit's --since.
	AuditSince = DurationSetting{Name: "--since", Default: "24h", Min: "1s", Max: "3650d"}
	// PassesSince is tapbot passes' --since: Entra ID keeps audit records 30 days at most.
	PassesSince = DurationSetting{Name: "--since", Default: "7d", Min: "1s", Max: "30d"}
)

// Durations are every duration variable Load reads, in the README's order.
var Durations = []DurationSetting{DefaultLifetime, MaxLifetime, RequestTTL, RemindAfter, WatchInterval,
	TenantWatchInterval, AuditLogRetention, GroupCacheTTL, AuditRetention, GraphTimeout, ShutdownTimeout, OnboardingNotice}
