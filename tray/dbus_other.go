//go:build darwin || windows

package tray

import (
	"context"
	"log/slog"
)

// available is always true: macOS and Windows always have a tray.
func available() error { return nil }

// keepRegistered is needed only for D-Bus trays.
func keepRegistered(context.Context, *slog.Logger) {}
