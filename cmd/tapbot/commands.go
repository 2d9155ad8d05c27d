package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

const usage = `tapbot: Temporary Access Passes for Microsoft Entra ID, approved in Slack and revealed once.

Usage:
  tapbot            run the bot (configuration from the environment and ./.env; see README.md)
  tapbot doctor     check the configuration and every connection, and say how to fix what fails
  tapbot demo       play the whole flow against built-in simulations of Slack and Entra ID
  tapbot audit      print the audit trail
  tapbot passes     list every pass Entra ID's audit log shows, with its origin and state
  tapbot version    print the version, the commit and the build date (also tapbot --version)

tapbot COMMAND -h prints the help of a command.
`

const doctorUsage = `Usage: tapbot doctor

Checks the configuration (the environment and ./.env, read as the bot reads them) and every
connection the bot makes: Slack, Entra ID and Microsoft Graph, and Redis. Prints one line per
check with the fix for each failure, and changes nothing. Exits 0 only when every check passed.
`

const demoUsage = `Usage: tapbot demo

Plays the whole flow with the real bot against built-in simulations of Slack and Entra ID and
the embedded store: a manager asks, an approver approves, the new hire reveals the pass once.
Prints the conversation as each person sees it. Needs no configuration; nothing leaves the
machine. Exits 0 when the flow completed.
`

const auditUsage = `Usage: tapbot audit [--since DURATION] [--user ID] [--json]

Prints the audit trail that tapbot keeps in Redis. Reads only REDIS_URL (or REDIS_URL_FILE) from
the environment and ./.env: no Slack token and no encryption key.

`

const versionUsage = `Usage: tapbot version (or tapbot --version)

Prints tapbot's version, the commit it was built from, and when it was built.
`

// command is a subcommand's arguments: its flags, and the help -h prints.
type command struct {
	*flag.FlagSet
	name, usage string
}

func newCommand(name, usage string) *command {
	fs := flag.NewFlagSet("tapbot "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse prints the help; an error is main's one line
	return &command{FlagSet: fs, name: name, usage: usage}
}

// parse parses the subcommand's arguments. For -h or --help it prints the help (and the flags, if
// any) to out and returns done; a wrong flag or a stray argument is an error that points to the
// help.
func (c *command) parse(args []string, out io.Writer) (done bool, err error) {
	if err := c.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(out, c.usage)
			c.SetOutput(out)
			c.PrintDefaults()
			c.SetOutput(io.Discard)
			return true, nil
		}
		return true, fmt.Errorf("%s: %w; see tapbot %[1]s -h", c.name, err)
	}
	if c.NArg() > 0 {
		return true, fmt.Errorf("%s: unexpected argument %q; see tapbot %[1]s -h", c.name, c.Arg(0))
	}
	return false, nil
}
