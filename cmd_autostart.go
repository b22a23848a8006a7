package main

import (
	"fmt"
	"strings"

	"ccmux/config"
	"ccmux/tray"
)

const autostartHelp = `on records this binary's absolute path, and --config PATH when a config
other than the default is in use (--config or CCMUX_CONFIG). A binary in Go's
build cache, a go run build or the temporary directory is refused: it would be
gone at the next login, so build or install ccmux first (go build, go install).
`

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
