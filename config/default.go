package config

// DefaultTOML is written to ~/.claude-code-mux/config.toml on first run. It
// serves a Claude Pro/Max user with no edits: every Claude model name goes to
// the subscription unchanged once `ccmux login` (or the tray's "Sign in with
// Claude") has stored a token.
const DefaultTOML = `# ccmux configuration (same schema as claude-code-mux).
# Point Claude Code at the proxy with: ANTHROPIC_BASE_URL=http://127.0.0.1:13456

[server]
host = "127.0.0.1"      # loopback only; other machines cannot reach the proxy
port = 13456
# api_key = "$CCMUX_API_KEY"    # optional: clients must then send this key
allowed_origins = []    # browser origins allowed to call the proxy

[router]
default = "claude-sonnet-4-5"   # used when a request names no model that resolves
# background = "claude-haiku-4-5"   # model for requests matching background_regex
background_regex = "(?i)claude.*haiku"
# think = ""           # model for requests with thinking enabled
# websearch = ""       # model for requests using the web_search tool
# long_context = ""    # model when the request is larger than the threshold
long_context_threshold = 60000

# Your Claude Pro/Max subscription: every claude-* model goes here unchanged.
[[providers]]
name = "claude-max"
provider_type = "anthropic"
auth_type = "oauth"
oauth_provider = "anthropic-max"
enabled = true
models = ["claude-*"]

# An Anthropic API-key account as a fallback (enable it and list it in a mapping):
# [[providers]]
# name = "anthropic-api"
# provider_type = "anthropic"
# auth_type = "api_key"
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
