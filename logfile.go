package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"ccmux/internal/safefile"
)

// openLog returns the tray's log at path, rotated at 10 MB with 3
// gzip-compressed backups (path.1.gz, newest, to path.3.gz). Logs name
// accounts, so the folder is made (or tightened to) 0700 and the file and
// its backups 0600. The file is opened without following a symbolic link,
// at start and at each rotation (see rotatingLog): a link there is
// refused, not written through. Backups left by an older ccmux (lumberjack's
// NAME-TIMESTAMP.EXT[.gz]) and ours are tightened to 0600 too.
func openLog(path string) (*rotatingLog, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the log folder %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("making the log folder %s private (0700): %w", dir, err)
	}
	w, err := openRotatingLog(path, 10<<20, 3)
	var notFile *safefile.NotRegularError
	if errors.As(err, &notFile) {
		return nil, fmt.Errorf("the log file %s is %s; ccmux writes its log only to a file of its own: remove it and start ccmux again", path, safefile.Kind(notFile.Mode))
	}
	if err != nil {
		return nil, fmt.Errorf("opening the log file %s: %w", path, err)
	}
	base := filepath.Base(path)
	ext := filepath.Ext(path)
	oldPrefix := strings.TrimSuffix(base, ext) + "-"
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name := e.Name()
		ours := strings.HasPrefix(name, base+".") && strings.HasSuffix(name, ".gz")
		older := strings.HasPrefix(name, oldPrefix) && (strings.HasSuffix(name, ext) || strings.HasSuffix(name, ext+".gz"))
		if ours || older {
			// A backup that is not a file is left alone: it is not ours.
			safefile.Tighten(filepath.Join(dir, name), 0o600)
		}
	}
	return w, nil
}
