package main

import (
	"errors"
	"log/slog"

	"ccmux/auth"
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

// signIn starts the browser login of a Claude login for the dashboard's
// Sign in, as the tray's does, and returns at once; one runs at a time.
func (s *service) signIn(id string) error {
	if !s.signingIn.CompareAndSwap(false, true) {
		return errors.New("a sign-in is already waiting in the browser; finish it or wait for it to time out")
	}
	go func() {
		defer s.signingIn.Store(false)
		if _, err := s.client.Login(s.ctx, id, auth.LoginOptions{}); err != nil {
			s.log.Warn("sign-in from the dashboard failed", "provider", id, "err", err)
			return
		}
		s.log.Info("signed in from the dashboard", "provider", id)
	}()
	return nil
}
