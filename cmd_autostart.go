package main

import (
	"fmt"
	"os"
	"path/filepath"

	"ccmux/tray"
)

func runAutostart(e *env, args []string) error {
	word, err := parseSubcommand(flags("autostart"), args, "on", "off", "status")
	if err != nil {
		return err
	}
	switch word {
	case "on":
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the ccmux binary: %w", err)
		}
		if exe, err = filepath.EvalSymlinks(exe); err != nil {
			return fmt.Errorf("finding the ccmux binary: %w", err)
		}
		if err := tray.EnableAutostart(exe); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "ccmux will start when you log in (%s).\n", exe)
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
