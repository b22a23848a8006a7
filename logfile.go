package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/natefinch/lumberjack.v2"

	"ccmux/internal/safefile"
)

// openLog returns the tray's log at path, rotated at 10 MB with 3
// compressed backups. Logs name accounts, so the folder is made (or
// tightened to) 0700 and the file 0600, opened without following a
// symbolic link: a link there is refused, not written through. Old
// backups are tightened to 0600 too; lumberjack gives each rotated file
// and its .gz the mode of the file it rotates, so new ones stay 0600.
func openLog(path string) (*lumberjack.Logger, error) {
	dir := filepath.Dir(path)
	// lumberjack would make the folder 0755.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the log folder %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("making the log folder %s private (0700): %w", dir, err)
	}
	f, err := safefile.OpenAppend(path, 0o600)
	var notFile *safefile.NotRegularError
	if errors.As(err, &notFile) {
		return nil, fmt.Errorf("the log file %s is %s; ccmux writes its log only to a file of its own: remove it and start ccmux again", path, safefile.Kind(notFile.Mode))
	}
	if err != nil {
		return nil, fmt.Errorf("opening the log file %s: %w", path, err)
	}
	f.Close()
	// lumberjack's backups are NAME-TIMESTAMP.EXT, then .gz when compressed.
	ext := filepath.Ext(path)
	prefix := strings.TrimSuffix(filepath.Base(path), ext) + "-"
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, prefix) && (strings.HasSuffix(name, ext) || strings.HasSuffix(name, ext+".gz")) {
			// A backup that is not a file is left alone: it is not ours.
			safefile.Tighten(filepath.Join(dir, name), 0o600)
		}
	}
	return &lumberjack.Logger{Filename: path, MaxSize: 10, MaxBackups: 3, Compress: true}, nil
}
