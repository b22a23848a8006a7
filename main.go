// Command ccmux is a tray app that signs you in to your Claude Pro/Max
// subscription and runs, in the same process, a local Anthropic Messages API
// proxy for Claude Code. See README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"ccmux/internal/wake"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// usageError is a command-line mistake: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// env is what every command gets: the streams and the config location.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	configFlag     string
	logLevelFlag   string        // --log-level, over server.log_level
	level          slog.LevelVar // the log level loadConfig settled on; a reload may change it
	// wake is the sleep and network-change detector a service runs; nil
	// means the system's (tests pass one with a fake clock).
	wake *wake.Detector
	// resumeDelay replaces the random wait before the background work
	// runs after a wake (auth.Options.ResumeDelay); nil: random.
	resumeDelay func() time.Duration
}

// command is one entry of the command table: its name, the arguments and
// summary help shows, and the function in its cmd_NAME.go. The function
// defines its own flags, so `help NAME` runs it with --help.
type command struct {
	name, args, summary string
	run                 func(e *env, args []string) error
	details             string // more help, after the flags
}

// exitStatus ends a command that has printed all it has to say with an
// exit status other than 0 and 1 (`ccmux status` reports what it found so).
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// helpRequest is -h/--help given to a command: run prints the command's
// usage from its own flag set, so the help lists exactly the flags it takes,
// and exits 0.
type helpRequest struct{ fs *flag.FlagSet }

func (h helpRequest) Error() string { return "help requested for " + h.fs.Name() }

// commands is the command table, in the order --help lists it; it is
// filled in init because runHelp reads it.
var commands []command

func init() {
	commands = []command{
		{"tray", "", "run the tray app with the proxy (the default command)", runTray, reloadHelp},
		{"start", "", "run the proxy only, headless, logging to stderr", runStart, reloadHelp},
		{"login", "[--provider ID] [--manual] [--console]", "sign in with Claude in the browser and store the token", runLogin, ""},
		{"logout", "[--provider ID]", "remove a stored token", runLogout, ""},
		{"status", "", "show signed-in providers, token expiry, usage limits and whether the proxy answers", runStatus, statusHelp},
		{"autostart", "on|off|status", "start ccmux when you log in", runAutostart, autostartHelp},
		{"config", "check", "validate the config file and summarise it", runConfig, ""},
		{"dashboard", "", "open the running proxy's dashboard in the browser", runDashboard, dashboardHelp},
		{"claude", "[--claude PATH] [ARGS…]", "run Claude Code against this proxy (starting one if none runs)", runClaude, claudeHelp},
		{"env", "[--shell sh|fish|powershell]", "print the variables that point Claude Code at this proxy", runEnv, envHelp},
		{"version", "", "print the version (also ccmux --version, ccmux -v)", runVersion, ""},
		{"help", "[COMMAND]", "show help for ccmux or one command", runHelp, ""},
	}
}

// run is ccmux with args, in this process: the tests call it as main does.
// It returns the exit status: 0, 1 when a command failed, 2 for a usage
// mistake, or the command's own (status: 3, 4; claude: Claude Code's).
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	rest, err := e.takeGlobalFlags(args)
	if err != nil {
		fmt.Fprintf(stderr, "ccmux: %v (see ccmux --help)\n", err)
		return 2
	}
	name := "tray"
	if len(rest) > 0 {
		name, rest = rest[0], rest[1:]
	}
	if strings.HasPrefix(name, "-") {
		switch name {
		case "-h", "-help", "--help":
			printUsage(stdout)
			return 0
		case "-v", "-version", "--version":
			name, rest = "version", nil
		default:
			fmt.Fprintf(stderr, "ccmux: unknown flag %s (see ccmux --help)\n", name)
			return 2
		}
	}
	cmd, ok := lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "ccmux: unknown command %q (see ccmux --help)\n", name)
		return 2
	}
	err = cmd.run(e, rest)
	var ue usageError
	var help helpRequest
	var status exitStatus
	switch {
	case err == nil:
		return 0
	case errors.As(err, &status):
		return int(status)
	case errors.As(err, &help):
		printCommandUsage(stdout, help.fs)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "ccmux %s: %s (see ccmux help %s)\n", cmd.name, ue.msg, cmd.name)
		return 2
	default:
		// A config error lists one problem a line; each is its own sentence.
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "ccmux: %s\n", line)
		}
		return 1
	}
}

// takeGlobalFlags removes the flags every command takes (--config) from
// args, wherever they are, so `ccmux config check --config F` works like
// `ccmux --config F config check`. A "--" ends the search: what follows is
// the command's own.
func (e *env) takeGlobalFlags(args []string) ([]string, error) {
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(rest, args[i:]...), nil
		}
		if len(rest) == 0 && a == "claude" {
			// Claude Code's arguments are its own, --config included.
			return append(rest, args[i:]...), nil
		}
		name, value, hasValue := strings.Cut(a, "=")
		var target *string
		what := ""
		switch name {
		case "--config", "-config":
			target, what = &e.configFlag, "the config file's path"
		case "--log-level", "-log-level":
			target, what = &e.logLevelFlag, "error, warn, info or debug"
		default:
			rest = append(rest, a)
			continue
		}
		if !hasValue {
			if i+1 == len(args) {
				return nil, fmt.Errorf("%s needs a value: %s", name, what)
			}
			i++
			value = args[i]
		}
		if value == "" {
			return nil, fmt.Errorf("%s needs a value: %s", name, what)
		}
		*target = value
	}
	return rest, nil
}

// lookup finds a command of the table by name.
func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}
