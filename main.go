// Command ccmux is a tray app that signs you in to your Claude Pro/Max
// subscription and runs, in the same process, a local Anthropic Messages API
// proxy for Claude Code. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"ccmux/auth"
	"ccmux/config"
	"ccmux/proxy"
	"ccmux/tray"

	"gopkg.in/natefinch/lumberjack.v2"
)

// version and commit are set by release builds with
// -ldflags "-X main.version=1.2.3 -X main.commit=…"; other builds (go build,
// go install) leave them empty and init reads them from the build info.
var version, commit string

func init() { version, commit = buildVersion(version, commit, debug.ReadBuildInfo) }

// buildVersion is the version and commit to show: the stamped ones first,
// else what the go command recorded (a module version, or since Go 1.24 the
// VCS tag or pseudo-version, and vcs.revision), else "dev".
func buildVersion(version, commit string, readBuildInfo func() (*debug.BuildInfo, bool)) (string, string) {
	if info, ok := readBuildInfo(); ok {
		if version == "" && info.Main.Version != "(devel)" {
			version = info.Main.Version
		}
		if commit == "" {
			commit = vcsCommit(info.Settings)
		}
	}
	if version == "" {
		version = "dev"
	}
	return strings.TrimPrefix(version, "v"), commit
}

// vcsCommit is the short revision the go command stamped, marked when the
// tree had uncommitted changes.
func vcsCommit(settings []debug.BuildSetting) string {
	var rev string
	var modified bool
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && modified {
		rev += "-dirty"
	}
	return rev
}

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
	logLevelFlag   string     // --log-level, over server.log_level
	level          slog.Level // the log level loadConfig settled on
}

type command struct {
	name, args, summary string
	run                 func(e *env, args []string) error
	details             string // more help, after the flags
}

// exitStatus ends a command that has printed all it has to say with an
// exit status other than 0 and 1 (`ccmux status` reports what it found so).
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// `ccmux status` exit statuses, for scripts.
const (
	statusNotRunning  exitStatus = 3
	statusNotSignedIn exitStatus = 4
)

// helpRequest is -h/--help given to a command: run prints the command's
// usage from its own flag set, so the help lists exactly the flags it takes,
// and exits 0.
type helpRequest struct{ fs *flag.FlagSet }

func (h helpRequest) Error() string { return "help requested for " + h.fs.Name() }

var commands []command

func init() {
	commands = []command{
		{"tray", "", "run the tray app with the proxy (the default command)", runTray, reloadHelp},
		{"start", "", "run the proxy only, headless, logging to stderr", runStart, reloadHelp},
		{"login", "[--provider ID] [--manual] [--console]", "sign in with Claude in the browser and store the token", runLogin, ""},
		{"logout", "[--provider ID]", "remove a stored token", runLogout, ""},
		{"status", "", "show signed-in providers, token expiry, usage limits and whether the proxy answers", runStatus, statusHelp},
		{"autostart", "on|off|status", "start ccmux when you log in", runAutostart, ""},
		{"config", "check", "validate the config file and summarise it", runConfig, ""},
		{"claude", "[--claude PATH] [ARGS…]", "run Claude Code against this proxy (starting one if none runs)", runClaude, claudeHelp},
		{"env", "[--shell sh|fish|powershell]", "print the variables that point Claude Code at this proxy", runEnv, envHelp},
		{"version", "", "print the version (also ccmux --version, ccmux -v)", runVersion, ""},
		{"help", "[COMMAND]", "show help for ccmux or one command", runHelp, ""},
	}
}

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

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

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
~/.claude-code-mux/config.toml, written on first run. It goes before or
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
	if e.level, err = config.ParseLogLevel(level); err != nil {
		return nil, usageError{"--log-level: " + err.Error()}
	}
	return cfg, nil
}

// logger logs to stderr at the level loadConfig settled on.
func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: e.level}))
}

// fileLogger logs to the OS's log place (config.LogPath), rotated by size,
// for the tray: started at login it has no terminal. close flushes it.
func (e *env) fileLogger() (log *slog.Logger, path string, close func(), err error) {
	path, err = config.LogPath()
	if err != nil {
		return nil, "", nil, err
	}
	// lumberjack would make the directory 0755; logs name accounts.
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, "", nil, fmt.Errorf("creating the log directory %s: %w", filepath.Dir(path), err)
	}
	w := &lumberjack.Logger{Filename: path, MaxSize: 10, MaxBackups: 3, Compress: true}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: e.level})), path, func() { w.Close() }, nil
}

// newAuth opens the token store and returns the auth client.
func (e *env) newAuth(cfg *config.Config, log *slog.Logger) (*auth.Client, error) {
	path, err := config.TokenPath()
	if err != nil {
		return nil, err
	}
	return auth.NewClient(cfg, auth.NewStore(path), auth.Options{Logger: log}), nil
}

func runVersion(e *env, args []string) error {
	if err := parseFlags(flags("version"), args); err != nil {
		return err
	}
	if commit == "" {
		fmt.Fprintf(e.stdout, "ccmux %s\n", version)
		return nil
	}
	fmt.Fprintf(e.stdout, "ccmux %s (commit %s)\n", version, commit)
	return nil
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
		fs := flags("claude")
		fs.String("claude", "", "run Claude Code at `PATH` (default: claude on PATH, or CCMUX_CLAUDE)")
		printCommandUsage(e.stdout, fs)
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

func runConfig(e *env, args []string) error {
	if _, err := parseSubcommand(flags("config"), args, "check"); err != nil {
		return err
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	if err := startable(cfg); err != nil {
		return err
	}
	tokens, _ := config.TokenPath()
	w := e.stdout
	fmt.Fprintf(w, "%s is valid.\n", cfg.Path)
	fmt.Fprintf(w, "Proxy: %s (set ANTHROPIC_BASE_URL=%s)\n", cfg.Addr(), cfg.BaseURL())
	fmt.Fprintf(w, "Providers:\n")
	for i, p := range cfg.Providers {
		state := ""
		if !p.IsEnabled() {
			state = " (disabled)"
		}
		how := "api key"
		if p.IsOAuth() {
			how = "oauth " + p.OAuthProvider
		}
		upstream := config.RedactURL(p.Upstream())
		if !p.SpeaksAnthropic() {
			upstream = fmt.Sprintf("skipped (provider_type %q is not Anthropic-compatible)", p.ProviderType)
		}
		fmt.Fprintf(w, "  %s: %s, %s, %s%s\n", p.Name, upstream, how, modelList(p.Models), state)
		if p.IsEnabled() && !p.IsOAuth() {
			if _, err := cfg.ProviderAPIKey(i); err != nil {
				fmt.Fprintf(w, "    warning: %v\n", err)
			}
		}
	}
	if len(cfg.Models) > 0 {
		fmt.Fprintf(w, "Models:\n")
		for _, m := range cfg.Models {
			maps := append([]config.Mapping(nil), m.Mappings...)
			sort.SliceStable(maps, func(i, j int) bool { return maps[i].Priority < maps[j].Priority })
			var to []string
			for _, mp := range maps {
				to = append(to, mp.Provider+":"+mp.ActualModel)
			}
			fmt.Fprintf(w, "  %s -> %s\n", m.Name, strings.Join(to, ", "))
		}
	}
	fmt.Fprintf(w, "Default model: %s\n", cfg.Router.Default)
	fmt.Fprintf(w, "Tokens: %s\n", tokens)
	return nil
}

func modelList(globs []string) string {
	if len(globs) == 0 {
		return "models by mapping only"
	}
	return "models " + strings.Join(globs, " ")
}

func runLogin(e *env, args []string) error {
	fs := flags("login")
	provider := fs.String("provider", "", "sign in to the token-store `ID` (default: the config's first Claude oauth_provider)")
	manual := fs.Bool("manual", false, "do not open a browser: print the URL and read the code#state you paste")
	console := fs.Bool("console", false, "create an Anthropic Console API key instead of using the subscription")
	cfg, err := e.commandConfig(fs, args)
	if err != nil {
		return err
	}
	if err := checkLoginProvider(cfg, *provider, *console); err != nil {
		return err
	}
	if *provider == "" && *console {
		*provider = consoleLoginID(cfg)
	} else if *provider == "" {
		*provider = cfg.DefaultOAuthProvider()
	}
	client, err := e.newAuth(cfg, slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if !*manual {
		fmt.Fprintf(e.stderr, "Opening your browser to sign in (provider %s)…\n", *provider)
	}
	acct, err := client.Login(ctx, *provider, auth.LoginOptions{Console: *console, Manual: *manual, Out: e.stderr, In: e.stdin})
	if err != nil {
		return fmt.Errorf("signing in to %s: %w", *provider, err)
	}
	who := acct.Email
	if who == "" {
		who = "your account"
	}
	if !acct.APIKey {
		fmt.Fprintf(e.stdout, "Signed in to %s as %s.\n", *provider, who)
		return nil
	}
	fmt.Fprintf(e.stdout, "Signed in to %s as %s: an API key is stored under the id %s.\n", *provider, who, *provider)
	if !slices.Contains(cfg.ClaudeOAuthIDs(), *provider) {
		fmt.Fprintf(e.stdout, "To use it, set oauth_provider = %q on an auth_type = \"oauth\" provider in %s.\n", *provider, cfg.Path)
	}
	return nil
}

// checkLoginProvider refuses a --provider that no Claude OAuth provider of
// cfg uses and no [oauth.ID] table names: a typo would otherwise sign in
// under an id nothing reads. A console login may pick a new id (its API key
// is then wired in by hand, as login says).
func checkLoginProvider(cfg *config.Config, id string, console bool) error {
	configured := cfg.ClaudeOAuthIDs()
	if id == "" || console || slices.Contains(configured, id) {
		return nil
	}
	if _, ok := cfg.OAuth[id]; ok {
		return nil
	}
	if len(configured) == 0 {
		return usageError{fmt.Sprintf("--provider %s: %s configures no Claude oauth_provider; add a provider with auth_type = \"oauth\" and oauth_provider = %q first", id, cfg.Path, id)}
	}
	return usageError{fmt.Sprintf("--provider %s: not an oauth_provider of a Claude provider in %s (configured: %s)", id, cfg.Path, strings.Join(configured, ", "))}
}

// consoleLoginID is where `ccmux login --console` stores its API key
// without --provider: the first Claude OAuth provider whose [oauth.ID]
// preset is "console", else auth.ConsoleID — never the subscription's id.
func consoleLoginID(cfg *config.Config) string {
	for _, id := range cfg.ClaudeOAuthIDs() {
		if cfg.OAuth[id].Preset == "console" {
			return id
		}
	}
	return auth.ConsoleID
}

func runLogout(e *env, args []string) error {
	fs := flags("logout")
	provider := fs.String("provider", "", "sign out of the token-store `ID` (default: the config's first Claude oauth_provider)")
	cfg, err := e.commandConfig(fs, args)
	if err != nil {
		return err
	}
	if *provider == "" {
		*provider = cfg.DefaultOAuthProvider()
	}
	client, err := e.newAuth(cfg, e.logger())
	if err != nil {
		return err
	}
	accounts, err := client.Accounts()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(accounts, func(a auth.Account) bool { return a.ProviderID == *provider })
	configured := configuredOAuthIDs(cfg)
	switch {
	case i < 0 && !slices.Contains(configured, *provider):
		// A typo must not read as a successful sign-out.
		if len(configured) == 0 {
			return usageError{fmt.Sprintf("--provider %s: no login is stored under that id, and %s configures no oauth_provider", *provider, cfg.Path)}
		}
		return usageError{fmt.Sprintf("--provider %s: no login is stored under that id, and it is not an oauth_provider in %s (configured: %s)", *provider, cfg.Path, strings.Join(configured, ", "))}
	case i < 0:
		fmt.Fprintf(e.stdout, "Not signed in to %s; nothing to remove.\n", *provider)
		return nil
	}
	// Logout refuses another app's login with its own sentence.
	if err := client.Logout(*provider); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Signed out of %s.\n", *provider)
	return nil
}

// configuredOAuthIDs are the oauth_provider ids the config's providers
// name, in file order without repeats.
func configuredOAuthIDs(cfg *config.Config) []string {
	var ids []string
	for _, p := range cfg.Providers {
		if p.IsOAuth() && p.OAuthProvider != "" && !slices.Contains(ids, p.OAuthProvider) {
			ids = append(ids, p.OAuthProvider)
		}
	}
	return ids
}

func runStatus(e *env, args []string) error {
	cfg, err := e.commandConfig(flags("status"), args)
	if err != nil {
		return err
	}
	client, err := e.newAuth(cfg, e.logger())
	if err != nil {
		return err
	}
	accounts, err := client.Accounts()
	if err != nil {
		return err
	}
	w := e.stdout
	var foreign []string
	signedIn := 0
	for _, a := range accounts {
		if a.Foreign {
			foreign = append(foreign, a.ProviderID)
		} else {
			signedIn++
		}
	}
	if signedIn == 0 {
		fmt.Fprintf(w, "Not signed in (run ccmux login).\n")
	}
	probe := probeProxy(cfg)
	running := probe.ccmux
	usage := statusUsage(cfg, client, probe.answers, accounts)
	now := time.Now()
	for _, a := range accounts {
		if a.Foreign {
			continue
		}
		who := a.Email
		if who == "" {
			who = "signed in"
		} else {
			who = "signed in as " + who
		}
		exp := "expires in " + humanDuration(a.ExpiresAt.Sub(now))
		switch {
		case a.APIKey:
			exp = "API key"
		case a.ExpiresAt.IsZero():
			exp = "no expiry"
		case !a.ExpiresAt.After(now) && a.LastError == "":
			// Lazily refreshed: the proxy renews it on its next request.
			exp = "token expired " + a.ExpiresAt.Local().Format(time.DateTime) + "; it is refreshed on the next request"
		case !a.ExpiresAt.After(now):
			exp = "expired " + a.ExpiresAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(w, "%s: %s, %s\n", a.ProviderID, who, exp)
		if a.LastError != "" {
			fmt.Fprintf(w, "  last refresh failed: %s\n", a.LastError)
		}
		for _, line := range usage[a.ProviderID] {
			fmt.Fprintln(w, line)
		}
	}
	for _, id := range foreign {
		fmt.Fprintf(w, "%s: managed by another app (ccmux leaves it alone)\n", id)
	}
	proxyState := "not running"
	switch {
	case probe.ccmux && probe.config != "":
		proxyState = "ccmux answering (config " + probe.config + ")"
	case probe.ccmux:
		proxyState = "ccmux answering"
	case probe.answers:
		proxyState = "another program answers here, not ccmux (claude-code-mux?)"
	}
	fmt.Fprintf(w, "Proxy: %s — %s\n", cfg.BaseURL(), proxyState)
	switch {
	case !running:
		return statusNotRunning
	case !signedInEverywhere(cfg, accounts, now):
		return statusNotSignedIn
	}
	return nil
}

const statusHelp = `Exit status:
  0  the proxy answers and you are signed in (or no OAuth provider is configured)
  3  the proxy is not running (whether or not you are signed in)
  4  the proxy answers, but an enabled OAuth provider is not signed in or its
     session ended (the token expired and could not be refreshed)
  1  the config or the token store could not be read
`

// signedInEverywhere reports whether every Claude login an enabled provider
// uses is stored and usable: an API key, an unexpired token, or an expired
// one that has not failed to refresh (the refresher renews it).
func signedInEverywhere(cfg *config.Config, accounts []auth.Account, now time.Time) bool {
	for _, id := range cfg.ClaudeOAuthIDs() {
		used := slices.ContainsFunc(cfg.Providers, func(p config.Provider) bool {
			return p.IsEnabled() && p.IsOAuth() && p.OAuthProvider == id
		})
		ok := slices.ContainsFunc(accounts, func(a auth.Account) bool {
			return a.ProviderID == id && !a.Foreign && (a.APIKey || a.ExpiresAt.After(now) || a.LastError == "")
		})
		if used && !ok {
			return false
		}
	}
	return true
}

// humanDuration writes d for people, to the minute: "7 h 59 min",
// "25 min", "1 day 5 h", "3 days", "less than a minute".
func humanDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	days, hours, mins := int(d/(24*time.Hour)), int(d/time.Hour)%24, int(d/time.Minute)%60
	plural := func(n int, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", mins)
	case d < 24*time.Hour && mins == 0:
		return fmt.Sprintf("%d h", hours)
	case d < 24*time.Hour:
		return fmt.Sprintf("%d h %d min", hours, mins)
	case days < 3 && hours > 0:
		return plural(days, "day") + fmt.Sprintf(" %d h", hours)
	default:
		return plural(days, "day")
	}
}

// proxyProbe is what answers /health at the configured address.
type proxyProbe struct {
	answers bool   // something answers 200
	ccmux   bool   // and says it is ccmux
	config  string // the config file that ccmux runs on, when it says
}

func probeProxy(cfg *config.Config) proxyProbe {
	resp, err := statusClient.Get(cfg.BaseURL() + "/health")
	if err != nil {
		return proxyProbe{}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return proxyProbe{}
	}
	var health struct {
		Service string `json:"service"`
		Config  string `json:"config"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&health)
	return proxyProbe{answers: true, ccmux: health.Service == "ccmux", config: health.Config}
}

// proxyAnswers reports whether something answers /health at the configured address.
func proxyAnswers(cfg *config.Config) bool {
	resp, err := statusClient.Get(cfg.BaseURL() + "/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// newProxy wires the proxy server to the auth client.
func newProxy(cfg *config.Config, client *auth.Client, log *slog.Logger) *proxy.Server {
	return &proxy.Server{
		Config:  cfg,
		Tokens:  tokenSource{client},
		Admin:   oauthAdmin{client},
		Logger:  log,
		Version: version,
	}
}

func runStart(e *env, args []string) error {
	cfg, err := e.commandConfig(flags("start"), args)
	if err != nil {
		return err
	}
	return e.serveHeadless(cfg)
}

// serveHeadless runs the proxy and the token refresher until SIGINT/SIGTERM.
func (e *env) serveHeadless(cfg *config.Config) error {
	log := e.logger()
	client, err := e.newAuth(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := newProxy(cfg, client, log)
	reloads := hangups(ctx)
	_, stopLimits := startLimits(ctx, cfg, client, srv, log)
	defer stopLimits()
	if err := srv.Start(ctx); err != nil {
		stop()
		return err
	}
	log.Info("proxy listening", "addr", srv.Addr(), "base_url", cfg.BaseURL())
	defer (&reloader{path: cfg.Path, srv: srv, client: client, log: log}).follow(ctx, reloads)()
	refresher := make(chan struct{})
	go func() { client.RunRefresher(ctx); close(refresher) }()
	<-ctx.Done()
	log.Info("stopping")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Stop(shutdown)
	<-refresher
	drainTokens(client, log)
	return err
}

// drainTokens waits, up to 10 seconds, for token refreshes in flight: the
// endpoint has rotated the refresh token, so exiting before the answer is
// stored would lose the login.
func drainTokens(client *auth.Client, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Drain(ctx); err != nil {
		log.Warn("stopped before a token refresh finished; sign in again if requests fail", "err", err)
	}
}

func runTray(e *env, args []string) error {
	cfg, err := e.commandConfig(flags("tray"), args)
	if err != nil {
		return err
	}
	if err := tray.Available(); err != nil {
		fmt.Fprintf(e.stderr, "ccmux: no system tray available (%v); running headless — use `ccmux login`/`ccmux status`\n", err)
		return e.serveHeadless(cfg)
	}
	log, logPath, closeLog, err := e.fileLogger()
	if err != nil {
		return err
	}
	defer closeLog()
	log.Info("starting the tray", "version", version, "config", cfg.Path)
	client, err := e.newAuth(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	refresher := make(chan struct{})
	go func() { client.RunRefresher(ctx); close(refresher) }()
	defer func() { stop(); <-refresher; drainTokens(client, log) }()
	srv := newProxy(cfg, client, log)
	tracker, stopLimits := startLimits(ctx, cfg, client, srv, log)
	defer func() { stop(); stopLimits() }()
	return tray.Run(ctx, tray.Options{
		Config:     cfg,
		ConfigPath: cfg.Path,
		Reload:     &reloader{path: cfg.Path, srv: srv, client: client, log: log},
		Reloads:    hangups(ctx),
		LogPath:    logPath,
		Auth:       &trayAuth{client: client, provider: cfg.DefaultOAuthProvider()},
		Proxy:      srv,
		Usage:      trayUsage{srv: srv, tracker: tracker, login: cfg.DefaultOAuthProvider()},
		Logger:     log,
		Version:    version,
	})
}

func runAutostart(e *env, args []string) error {
	word, err := parseSubcommand(flags("autostart"), args, "on", "off", "status")
	if err != nil {
		return err
	}
	switch word {
	case "on":
		// The entry names a config file: check it now, not at the next
		// login. The default one is written by the first run, if need be.
		path, isDefault, err := config.ResolvePath(e.configFlag)
		if err != nil {
			return err
		}
		if !isDefault {
			if _, err := config.Load(path); err != nil {
				return err
			}
		}
		cmd, err := tray.EnableAutostart(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "ccmux will start when you log in (%s).\n", strings.Join(cmd, " "))
	case "off":
		if err := tray.DisableAutostart(); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "ccmux will not start when you log in.")
	case "status":
		on, err := tray.AutostartEnabled()
		if err != nil {
			return err
		}
		state := "off"
		if on {
			state = "on"
		}
		fmt.Fprintf(e.stdout, "Start at login: %s\n", state)
	}
	return nil
}

// statusClient asks the local proxy whether it answers; never used upstream.
var statusClient = &http.Client{Timeout: 2 * time.Second}

// tokenSource adapts the auth client to the proxy's TokenSource.
type tokenSource struct{ c *auth.Client }

func (t tokenSource) Token(ctx context.Context, id string) (proxy.Credential, error) {
	cred, err := t.c.Credential(ctx, id)
	return proxy.Credential{Value: cred.Value, APIKey: cred.APIKey}, err
}

func (t tokenSource) ForceRefresh(ctx context.Context, id string) (proxy.Credential, error) {
	cred, err := t.c.ForceRefresh(ctx, id)
	return proxy.Credential{Value: cred.Value, APIKey: cred.APIKey}, err
}

// oauthAdmin adapts the auth client to the proxy's admin API.
type oauthAdmin struct{ c *auth.Client }

func (a oauthAdmin) Authorize(id, preset string) (string, string, error) {
	return a.c.Authorize(id, preset)
}

func (a oauthAdmin) Exchange(ctx context.Context, id, code, state string) error {
	_, err := a.c.Exchange(ctx, id, code, state)
	return err
}

func (a oauthAdmin) Tokens() ([]proxy.TokenInfo, error) {
	accounts, err := a.c.Accounts()
	infos := make([]proxy.TokenInfo, 0, len(accounts))
	for _, acct := range accounts {
		if acct.Foreign {
			continue // another app's login: not ccmux's to list, refresh or delete
		}
		infos = append(infos, tokenInfo(acct))
	}
	return infos, err
}

func tokenInfo(acct auth.Account) proxy.TokenInfo {
	return proxy.TokenInfo{ProviderID: acct.ProviderID, ExpiresAt: acct.ExpiresAt, Email: acct.Email, APIKey: acct.APIKey}
}

func (a oauthAdmin) Delete(id string) error { return a.c.Logout(id) }

// Refresh forces a refresh through the same path as the proxy's 401 retry,
// so the auth client's rules for which logins it may refresh apply here too.
func (a oauthAdmin) Refresh(ctx context.Context, id string) (proxy.TokenInfo, error) {
	if _, err := a.c.ForceRefresh(ctx, id); err != nil {
		return proxy.TokenInfo{}, err
	}
	accounts, err := a.c.Accounts()
	if err != nil {
		return proxy.TokenInfo{}, err
	}
	for _, acct := range accounts {
		if acct.ProviderID == id {
			return tokenInfo(acct), nil
		}
	}
	return proxy.TokenInfo{}, fmt.Errorf("the login %s was removed while it was refreshed", id)
}

var trayEventKinds = map[auth.EventKind]tray.AuthEventKind{
	auth.SignedIn:      tray.SignedIn,
	auth.Refreshed:     tray.Refreshed,
	auth.RefreshFailed: tray.RefreshFailed,
	auth.ExpiringSoon:  tray.ExpiringSoon,
	auth.Expired:       tray.Expired,
	auth.SignedOut:     tray.SignedOut,
}

// trayAuth adapts the auth client to the tray, for one token-store id.
type trayAuth struct {
	client   *auth.Client
	provider string
}

func (t *trayAuth) Login(ctx context.Context) (tray.Account, error) {
	acct, err := t.client.Login(ctx, t.provider, auth.LoginOptions{})
	if err != nil {
		return tray.Account{}, err
	}
	return tray.Account{SignedIn: true, Email: acct.Email, ExpiresAt: acct.ExpiresAt}, nil
}

func (t *trayAuth) Logout() error { return t.client.Logout(t.provider) }

func (t *trayAuth) Account() tray.Account {
	accounts, _ := t.client.Accounts()
	for _, a := range accounts {
		if a.ProviderID == t.provider && !a.Foreign {
			return tray.Account{SignedIn: true, Email: a.Email, ExpiresAt: a.ExpiresAt, Expired: !a.APIKey && !a.ExpiresAt.After(time.Now())}
		}
	}
	return tray.Account{}
}

func (t *trayAuth) Events() (<-chan tray.AuthEvent, func()) {
	in, cancel := t.client.Subscribe()
	out := make(chan tray.AuthEvent)
	done := make(chan struct{})
	go func() {
		defer close(out)
		for ev := range in {
			if ev.ProviderID != t.provider {
				continue
			}
			kind, ok := trayEventKinds[ev.Kind]
			if !ok {
				continue
			}
			select {
			case out <- tray.AuthEvent{Kind: kind, Email: ev.Email, ExpiresAt: ev.ExpiresAt, Reason: ev.Reason}:
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return out, func() { once.Do(func() { close(done); cancel() }) }
}
