package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"ccmux/config"
)

// flags returns a FlagSet for a subcommand whose errors become usage errors.
func flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses a command that takes flags only.
func parseFlags(fs *flag.FlagSet, args []string) error {
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", rest[0])}
	}
	return nil
}

// parseSubcommand parses a command that takes one of words, with flags
// before or after it: `ccmux config check -h` is help, as `ccmux config -h` is.
func parseSubcommand(fs *flag.FlagSet, args []string, words ...string) (string, error) {
	rest, err := parseArgs(fs, args)
	if err != nil {
		return "", err
	}
	if len(rest) == 0 {
		return "", usageError{"want: ccmux " + fs.Name() + " " + strings.Join(words, "|")}
	}
	if !slices.Contains(words, rest[0]) {
		choice := words[0]
		if n := len(words); n > 1 {
			choice = strings.Join(words[:n-1], ", ") + " or " + words[n-1]
		}
		return "", usageError{fmt.Sprintf("want %s, got %q", choice, rest[0])}
	}
	return rest[0], parseFlags(fs, rest[1:])
}

// parseArgs parses a command's flags and returns the arguments after them.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	// The flag package names a flag with one dash whatever the user typed;
	// check first, so the message shows --port as it was typed.
	if err := checkFlags(fs, args); err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, helpRequest{fs}
		}
		return nil, usageError{err.Error()}
	}
	return fs.Args(), nil
}

// checkFlags finds, as the flag package will parse args, a flag fs does
// not define or one missing its value, and names it as typed.
func checkFlags(fs *flag.FlagSet, args []string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || len(a) < 2 || a[0] != '-' {
			return nil // the flags end here
		}
		typed, _, hasValue := strings.Cut(a, "=")
		name := strings.TrimPrefix(strings.TrimPrefix(typed, "-"), "-")
		if name == "h" || name == "help" {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			return usageError{"unknown flag " + typed}
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); hasValue || ok && b.IsBoolFlag() {
			continue
		}
		if i+1 == len(args) {
			return usageError{typed + " needs a value"}
		}
		i++
	}
	return nil
}

// commandConfig parses a command's flags, then loads the config.
func (e *env) commandConfig(fs *flag.FlagSet, args []string) (*config.Config, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return e.loadConfig()
}

// loadConfig finds, creates on first run, and validates the config file.
func (e *env) loadConfig() (*config.Config, error) {
	path, isDefault, err := config.ResolvePath(e.configFlag)
	if err != nil {
		return nil, err
	}
	cfg, created, err := config.LoadOrCreate(path, isDefault)
	if created {
		fmt.Fprintf(e.stderr, "ccmux: wrote the default config to %s\n", path)
	}
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(e.stderr, "ccmux: warning: %s: %s\n", path, w)
	}
	level := cfg.Server.LogLevel
	if e.logLevelFlag != "" {
		level = e.logLevelFlag
	}
	lv, err := config.ParseLogLevel(level)
	if err != nil {
		return nil, usageError{"--log-level: " + err.Error()}
	}
	e.level.Set(lv)
	return cfg, nil
}

// logger logs to stderr at the level loadConfig settled on.
func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: &e.level}))
}

// fileLogger logs to the OS's log place (config.LogPath), rotated by size,
// for the tray: started at login it has no terminal. close flushes it.
func (e *env) fileLogger() (log *slog.Logger, path string, close func(), err error) {
	path, err = config.LogPath()
	if err != nil {
		return nil, "", nil, err
	}
	w, err := openLog(path)
	if err != nil {
		return nil, "", nil, err
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: &e.level})), path, func() { w.Close() }, nil
}
