package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

func printUsage(w io.Writer) {
	fmt.Fprint(w, `ccmux signs you in to your Claude Pro/Max subscription and runs a local
Anthropic Messages API proxy for Claude Code (ANTHROPIC_BASE_URL=http://127.0.0.1:13456).

Usage: ccmux [--config PATH] [COMMAND] [FLAGS]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %-40s %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprint(w, `
--config PATH (or CCMUX_CONFIG) picks the config file; the default is
~/.claude-code-mux/config.toml, written on first run. --log-level LEVEL
(error, warn, info or debug) overrides server.log_level. Both go before or
after the command. ccmux help COMMAND, or ccmux COMMAND --help, shows a
command's flags; ccmux --version prints the version.
`)
}

// printCommandUsage writes a command's usage, its flags as fs defines them,
// and the global flags.
func printCommandUsage(w io.Writer, fs *flag.FlagSet) {
	c, _ := lookup(fs.Name())
	fmt.Fprintf(w, "Usage: ccmux %s", c.name)
	if c.args != "" {
		fmt.Fprintf(w, " %s", c.args)
	}
	fmt.Fprintf(w, " [--config PATH]\n\n%s.\n", upperFirst(c.summary))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		if n == 0 {
			fmt.Fprintf(tw, "\nFlags:\n")
		}
		n++
		arg, usage := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + arg
		}
		fmt.Fprintf(tw, "  --%s%s\t%s\n", f.Name, arg, usage)
	})
	fmt.Fprintf(tw, "\nGlobal flags:\n")
	fmt.Fprintf(tw, "  --config PATH\tthe config file (or CCMUX_CONFIG; default ~/.claude-code-mux/config.toml)\n")
	fmt.Fprintf(tw, "  --log-level LEVEL\terror, warn, info or debug (default server.log_level, else info)\n")
	fmt.Fprintf(tw, "  -h, --help\tshow this help\n")
	tw.Flush()
	if c.details != "" {
		fmt.Fprintf(w, "\n%s", c.details)
	}
}

func runHelp(e *env, args []string) error {
	args, err := parseArgs(flags("help"), args)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		printUsage(e.stdout)
		return nil
	}
	c, ok := lookup(args[0])
	if !ok {
		return usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
	if c.name == "claude" {
		// `ccmux claude --help` is Claude Code's help; ccmux's is here.
		printCommandUsage(e.stdout, claudeFlags())
		return nil
	}
	// The command's own flag set answers --help before it does anything else.
	return c.run(e, []string{"--help"})
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
