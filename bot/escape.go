package bot

import "strings"

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// escape makes user text safe inside mrkdwn: without < and > it cannot mention <!channel>,
// <!here>, a user or a group, nor forge a link. Slack asks for exactly these three escapes.
func escape(s string) string { return mrkdwnEscaper.Replace(s) }
