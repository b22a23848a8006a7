package config

// DefaultTOML is written to ~/.claude-code-mux/config.toml on first run. It
// serves a Claude Pro/Max user with no edits: every Claude model name goes to
// the subscription unchanged once `ccmux login` (or the tray's "Sign in with
// Claude") has stored a token.
const DefaultTOML = `# ccmux configuration. claude-code-mux reads this file too (same schema).
# Run Claude Code through the proxy with: ccmux claude (or eval "$(ccmux env)", then claude)

[server]
host = "127.0.0.1"      # loopback only; other machines cannot reach the proxy
port = 13456
# api_key = "$CCMUX_API_KEY"    # optional: clients must then send this key
allowed_origins = []    # browser origins allowed to call the proxy

[router]
default = "claude-sonnet-4-5"   # used when a request names no model that resolves
# background = "claude-haiku-4-5"     # model for requests matching background_regex
background_regex = "(?i)claude.*haiku"
# think = "claude-opus-4-5"           # model for requests with thinking enabled
# websearch = "claude-sonnet-4-5"     # model for requests using the web_search tool
# long_context = "claude-sonnet-4-5"  # model when the request is larger than the threshold
long_context_threshold = 60000

# Your Claude Pro/Max subscription: every claude-* model goes here unchanged.
[[providers]]
name = "claude-max"
provider_type = "anthropic"
auth_type = "oauth"
oauth_provider = "anthropic-max"
enabled = true
models = ["claude-*"]

# The default model on the subscription. ccmux needs no entry for it (the
# provider's models cover it); claude-code-mux does: it maps every claude-*
# name to router.default and looks that up here.
[[models]]
name = "claude-sonnet-4-5"
[[models.mappings]]
actual_model = "claude-sonnet-4-5"
priority = 1
provider = "claude-max"

# An Anthropic API-key account as a fallback (enable it and list it in a mapping):
# [[providers]]
# name = "anthropic-api"
# provider_type = "anthropic"
# auth_type = "apikey"
# api_key = "$ANTHROPIC_API_KEY"
# enabled = true
# models = []

# A model name of your own, tried on the subscription first, then the API key:
# [[models]]
# name = "sonnet"
# [[models.mappings]]
# actual_model = "claude-sonnet-4-5-20250929"
# priority = 1
# provider = "claude-max"
# [[models.mappings]]
# actual_model = "claude-sonnet-4-5-20250929"
# priority = 2
# provider = "anthropic-api"
`
