package approvals

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseLifetime reads a lifetime the way people type it: 90m, 2h, 1h30m, 1d. It refuses zero and
// negative values and anything with seconds or fractions, which Entra cannot express.
func ParseLifetime(s string) (time.Duration, error) {
	in := strings.ToLower(strings.TrimSpace(s))
	if in == "" {
		return 0, fmt.Errorf("empty lifetime")
	}
	if strings.HasPrefix(in, "-") {
		return 0, fmt.Errorf("lifetime %q is negative; use a positive duration such as 90m, 2h or 1d", s)
	}
	var total time.Duration
	rest := in
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, fmt.Errorf("lifetime %q is not a duration; use minutes, hours or days such as 90m, 2h, 1h30m or 1d", s)
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n > 100000 {
			return 0, fmt.Errorf("lifetime %q is too large", s)
		}
		var unit time.Duration
		switch rest[i] {
		case 'd':
			unit = 24 * time.Hour
		case 'h':
			unit = time.Hour
		case 'm':
			unit = time.Minute
		default:
			return 0, fmt.Errorf("lifetime %q has an unknown unit %q; use m, h or d such as 90m, 2h or 1d", s, rest[i])
		}
		total += time.Duration(n) * unit
		rest = rest[i+1:]
	}
	if total <= 0 {
		return 0, fmt.Errorf("lifetime %q is zero; use a positive duration such as 90m, 2h or 1d", s)
	}
	return total, nil
}

// FormatDuration writes a duration the way ParseLifetime reads it: 1d, 8h, 1h30m, 45m.
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0m"
	}
	d = d.Round(time.Minute)
	var b strings.Builder
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dd", days)
		d -= days * 24 * time.Hour
	}
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	return b.String()
}
