package tray

import (
	"errors"
	"fmt"

	"golang.org/x/sys/windows/registry"
)

const (
	runKey = `Software\Microsoft\Windows\CurrentVersion\Run`
	// approvedKey holds what Task Manager's Startup tab sets: a binary value
	// whose first byte is even when the entry is enabled, odd when disabled.
	approvedKey = `Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run`
)

// runEntry is the HKCU Run value named ccmux.
type runEntry struct{}

func platformAutostart() autostarter { return runEntry{} }

func (runEntry) Enabled() (bool, error) {
	k, err := registry.OpenKey(registry.CURRENT_USER, runKey, registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf(`reading HKCU\%s: %w`, runKey, err)
	}
	defer k.Close()
	if _, _, err := k.GetStringValue(runValueName); errors.Is(err, registry.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf(`reading HKCU\%s\%s: %w`, runKey, runValueName, err)
	}
	if a, err := registry.OpenKey(registry.CURRENT_USER, approvedKey, registry.QUERY_VALUE); err == nil {
		defer a.Close()
		if b, _, err := a.GetBinaryValue(runValueName); err == nil && len(b) > 0 && b[0]&1 == 1 {
			return false, nil
		}
	}
	return true, nil
}

func (runEntry) Enable(login loginCommand) error {
	cmd, err := runCommand(login)
	if err != nil {
		return err
	}
	k, _, err := registry.CreateKey(registry.CURRENT_USER, runKey, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf(`opening HKCU\%s: %w`, runKey, err)
	}
	defer k.Close()
	if err := k.SetStringValue(runValueName, cmd); err != nil {
		return fmt.Errorf(`writing HKCU\%s\%s: %w`, runKey, runValueName, err)
	}
	// A "disabled" mark left by Task Manager would keep the new entry off.
	if a, err := registry.OpenKey(registry.CURRENT_USER, approvedKey, registry.SET_VALUE); err == nil {
		defer a.Close()
		a.DeleteValue(runValueName)
	}
	return nil
}

func (runEntry) Disable() error {
	k, err := registry.OpenKey(registry.CURRENT_USER, runKey, registry.SET_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf(`opening HKCU\%s: %w`, runKey, err)
	}
	defer k.Close()
	if err := k.DeleteValue(runValueName); err != nil && !errors.Is(err, registry.ErrNotExist) {
		return fmt.Errorf(`removing HKCU\%s\%s: %w`, runKey, runValueName, err)
	}
	return nil
}
