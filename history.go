package main

import (
	"log/slog"

	"ccmux/config"
	"ccmux/internal/history"
	"ccmux/proxy"
)

// openHistory opens ~/.claude-code-mux/ccmux.db for srv's request history,
// pruned to the running config's [dashboard] retention_days. A database
// that cannot be opened is logged, and the proxy runs without history.
func openHistory(srv *proxy.Server, log *slog.Logger) *history.Store {
	dir, err := config.Dir()
	if err != nil {
		log.Warn("running without request history", "err", err)
		return nil
	}
	st, err := history.Open(history.Path(dir), history.Options{
		Logger:    log,
		Retention: func() int { return srv.CurrentConfig().Dashboard.Retention() },
	})
	if err != nil {
		log.Warn("running without request history", "err", err)
		return nil
	}
	return st
}
