package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"ccmux/config"
)

const claudeHelp = `Runs Claude Code ("claude" on PATH; --claude PATH or CCMUX_CLAUDE for another)
with ANTHROPIC_BASE_URL pointing at this proxy and ANTHROPIC_AUTH_TOKEN set to
server.api_key, or to a placeholder so that Claude Code does not ask for a login
of its own. ANTHROPIC_API_KEY is removed from Claude Code's environment: Claude
Code would send a key left in the shell instead, and the proxy would refuse it.
Every argument after "claude" (and after --claude PATH) goes to
Claude Code unchanged, --help and --config included (put ccmux's --config
before "claude"); Claude Code's exit status is ccmux's.
When no proxy answers on the configured address, ccmux runs one until Claude
Code exits, and says so.
`

// claudeFlags is the one flag of ccmux's own that `ccmux claude` takes, for
// its help: runClaude reads it by hand, because every other argument,
// --help included, is Claude Code's.
func claudeFlags() *flag.FlagSet {
	fs := flags("claude")
	fs.String("claude", "", "run Claude Code at `PATH` (default: claude on PATH, or CCMUX_CLAUDE)")
	return fs
}

// runClaude runs Claude Code against the proxy. Its arguments are Claude
// Code's: run() hands them over without looking for global flags.
func runClaude(e *env, args []string) error {
	bin := os.Getenv("CCMUX_CLAUDE")
	if len(args) > 0 {
		if v, ok := strings.CutPrefix(args[0], "--claude="); ok {
			bin, args = v, args[1:]
		} else if args[0] == "--claude" {
			if len(args) < 2 {
				return usageError{"--claude needs a value: the path of Claude Code"}
			}
			bin, args = args[1], args[2:]
		}
	}
	if bin == "" {
		bin = "claude"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return fmt.Errorf("cannot find Claude Code (%s): install it with npm install -g @anthropic-ai/claude-code, or give its path with --claude or CCMUX_CLAUDE", bin)
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	token, err := clientToken(cfg)
	if err != nil {
		return err
	}
	if !probeProxy(cfg).answers {
		stop, err := e.proxyForClaude(cfg)
		if err != nil {
			return fmt.Errorf("no proxy answers on %s and ccmux could not start one: %w", cfg.BaseURL(), err)
		}
		defer stop()
		fmt.Fprintf(e.stderr, "ccmux: no proxy was running on %s; running one until Claude Code exits\n", cfg.BaseURL())
	}

	cmd := exec.Command(path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, e.stdout, e.stderr
	cmd.Env = claudeEnv(os.Environ(), cfg.BaseURL(), token, runtime.GOOS == "windows")
	// Ctrl-C reaches Claude Code from the terminal itself (same process
	// group); ccmux only must not die of it. Signals sent to ccmux alone
	// (SIGTERM, SIGHUP) are passed on.
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(signals)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting Claude Code (%s): %w", path, err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-signals:
				if s != os.Interrupt {
					cmd.Process.Signal(s)
				}
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return exitStatus(128 + int(ws.Signal()))
		}
		return exitStatus(exit.ExitCode())
	}
	return err
}

// proxyForClaude runs the proxy in this process while Claude Code runs. It
// logs nothing: Claude Code owns the terminal.
func (e *env) proxyForClaude(cfg *config.Config) (stop func(), err error) {
	svc, err := e.startService(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	if err := svc.proxy.Start(context.Background()); err != nil {
		svc.stop()
		return nil, err
	}
	return func() { svc.stop() }, nil
}

// claudeEnv is Claude Code's environment: the user's, with ccmux's
// ANTHROPIC_BASE_URL and ANTHROPIC_AUTH_TOKEN in place of any there and
// without ANTHROPIC_API_KEY, which Claude Code would send instead of the
// token (`ccmux env` unsets it too). foldCase is Windows, where names are
// case-insensitive: anthropic_api_key is the same variable there.
func claudeEnv(environ []string, baseURL, token string, foldCase bool) []string {
	env := make([]string, 0, len(environ)+2)
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if foldCase {
			name = strings.ToUpper(name)
		}
		switch name {
		case "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "ANTHROPIC_BASE_URL="+baseURL, "ANTHROPIC_AUTH_TOKEN="+token)
}
