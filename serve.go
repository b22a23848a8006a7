package main

import (
	"context"
	"log/slog"
	"time"

	"ccmux/auth"
	"ccmux/config"
	"ccmux/proxy"
)

// newAuth opens the token store and returns the auth client.
func (e *env) newAuth(cfg *config.Config, log *slog.Logger) (*auth.Client, error) {
	path, err := config.TokenPath()
	if err != nil {
		return nil, err
	}
	return auth.NewClient(cfg, auth.NewStore(path), auth.Options{Logger: log}), nil
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
