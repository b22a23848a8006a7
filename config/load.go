package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"ccmux/internal/safefile"
)

// PlaceholderModel is the router.default of claude-code-mux's first-run
// config, which names no real model.
const PlaceholderModel = "placeholder-model"

// Names of the files ccmux keeps in Dir.
const (
	DirName        = ".claude-code-mux"
	ConfigFileName = "config.toml"
	TokenFileName  = "oauth_tokens.json"
)

// Dir is ~/.claude-code-mux, where the config and token store live.
func Dir() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the home directory for %s: %w", DirName, err)
	}
	return filepath.Join(home, DirName), nil
}

// TokenPath is the token store, ~/.claude-code-mux/oauth_tokens.json.
func TokenPath() (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, TokenFileName), nil
}

// ResolvePath picks the config file: the --config flag, then CCMUX_CONFIG,
// then ~/.claude-code-mux/config.toml. isDefault is true only for the last.
func ResolvePath(flag string) (path string, isDefault bool, err error) {
	if flag != "" {
		return flag, false, nil
	}
	if env := os.Getenv("CCMUX_CONFIG"); env != "" {
		return env, false, nil
	}
	path, err = DefaultPath()
	return path, err == nil, err
}

// DefaultPath is ~/.claude-code-mux/config.toml, the config file when
// neither --config nor CCMUX_CONFIG names one.
func DefaultPath() (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, ConfigFileName), nil
}

// LoadOrCreate loads path. When path is the default location and no file is
// there yet, it first writes the built-in default (directory 0700, file 0600)
// and reports created = true so the caller can tell the user where it is.
func LoadOrCreate(path string, isDefault bool) (cfg *Config, created bool, err error) {
	if isDefault {
		if _, statErr := os.Stat(path); errors.Is(statErr, fs.ErrNotExist) {
			if err := WriteDefault(path); err != nil {
				return nil, false, err
			}
			created = true
		}
	}
	cfg, err = Load(path)
	return cfg, created, err
}

// WriteDefault writes the built-in default config to path, creating its
// directory with mode 0700; the file gets mode 0600. It never overwrites.
func WriteDefault(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating config directory %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("writing default config %s: %w", path, err)
	}
	if _, err := f.WriteString(DefaultTOML); err != nil {
		f.Close()
		return fmt.Errorf("writing default config %s: %w", path, err)
	}
	return f.Close()
}

// Load reads and validates the config file at path.
func Load(path string) (*Config, error) {
	// A FIFO would block forever, and a huge file is a mistake (a config
	// is a few KB), not something to hold in memory.
	data, err := safefile.Read(path, MaxConfigBytes)
	var notFile *safefile.NotRegularError
	var tooLarge *safefile.TooLargeError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("config file %s does not exist (check --config or CCMUX_CONFIG)", path)
	case errors.As(err, &notFile):
		return nil, fmt.Errorf("config file %s is not a regular file (check --config or CCMUX_CONFIG)", path)
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("config file %s is %d bytes; a config is at most %d bytes (1 MiB)", path, tooLarge.Size, MaxConfigBytes)
	case err != nil:
		return nil, fmt.Errorf("reading config %s: %w", path, err)
	}
	return Parse(path, data)
}

// MaxConfigBytes bounds the config file Load reads.
const MaxConfigBytes = 1 << 20

// Default returns the built-in default config.
func Default() *Config {
	cfg, err := Parse("", []byte(DefaultTOML))
	if err != nil {
		panic("built-in default config is invalid: " + err.Error())
	}
	return cfg
}

// Parse decodes and validates data; file names it in errors.
// A returned *Error lists every problem found.
func Parse(file string, data []byte) (*Config, error) {
	name := file
	if name == "" {
		name = "built-in default config"
	}
	if p := depthProblem(data); p != nil {
		return nil, &Error{File: name, Problems: []Problem{*p}}
	}
	var cfg Config
	md, err := toml.NewDecoder(strings.NewReader(string(data))).Decode(&cfg)
	if err != nil {
		var pe toml.ParseError
		if !errors.As(err, &pe) {
			// A type mismatch: the decoder stops at the first one; list them all.
			if ps := typeProblems(data); len(ps) > 0 {
				return nil, &Error{File: name, Problems: ps}
			}
		}
		return nil, &Error{File: name, Problems: []Problem{decodeProblem(err)}}
	}
	cfg.Path, cfg.lines = file, locateKeys(data)
	v := validator{cfg: &cfg, lines: cfg.lines}
	if v.deepKeys(md) {
		return nil, &Error{File: name, Problems: v.problems}
	}
	// An unknown key is usually a typo and the cause of the problems that
	// follow from it (auth_typ leaves auth_type unset): it comes first.
	v.unknownKeys(md)
	unknown := len(v.problems)
	v.portableSpellings(md)
	if md.IsDefined("server", "port") && cfg.Server.Port == 0 {
		// 0 would otherwise read as "unset" and quietly become the default.
		v.fail("server.port", "want a port from 1 to 65535, got 0 (leave server.port out for the default %d)", DefaultPort)
	}
	if md.IsDefined("dashboard", "retention_days") && cfg.Dashboard.RetentionDays == 0 {
		v.fail("dashboard.retention_days", "want a number of days from 1 to %d, got 0 (leave it out for the default %d)", maxRetentionDays, DefaultRetentionDays)
	}
	cfg.applyDefaults()
	v.check()
	v.durations()
	if len(v.problems) > 0 {
		byLine := func(ps []Problem) {
			sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
		}
		byLine(v.problems[:unknown])
		byLine(v.problems[unknown:])
		return nil, &Error{File: name, Problems: v.problems}
	}
	cfg.Warnings = v.warnings
	return &cfg, nil
}

var (
	// BurntSushi/toml reports type mismatches as plain errors of this form.
	typeErrRE = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): (.*)$`)
	typesRE   = regexp.MustCompile(`TOML value has type (\w+); destination has type (\w+)`)
)

// decodeProblem turns a TOML syntax or type error into a Problem with its line and key.
func decodeProblem(err error) Problem {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return Problem{Line: pe.Position.Line, Msg: pe.Message}
	}
	m := typeErrRE.FindStringSubmatch(err.Error())
	if m == nil {
		return Problem{Msg: err.Error()}
	}
	line, _ := strconv.Atoi(m[1])
	msg := m[3]
	if t := typesRE.FindStringSubmatch(msg); t != nil {
		msg = fmt.Sprintf("want a value of type %s, got %s", t[2], t[1])
	}
	return Problem{Line: line, Key: m[2], Msg: msg}
}

func (c *Config) applyDefaults() {
	if c.Server.Host == "" {
		c.Server.Host = DefaultHost
	}
	if c.Server.Port == 0 {
		c.Server.Port = DefaultPort
	}
	if c.Router.BackgroundRegex == "" {
		c.Router.BackgroundRegex = DefaultBackgroundRegex
	}
	if c.Router.LongContextThreshold == 0 {
		c.Router.LongContextThreshold = DefaultLongContextThreshold
	}
	for i := range c.Providers {
		p := &c.Providers[i]
		switch strings.ToLower(p.AuthType) {
		case "", "apikey", "api_key", "api-key":
			p.AuthType = AuthAPIKey
		case "oauth":
			p.AuthType = AuthOAuth
		}
		if p.ProviderType == "" {
			p.ProviderType = "anthropic"
		}
	}
}

// Problem is one thing wrong with a config file.
type Problem struct {
	Line int    // 1-based; 0 when unknown
	Key  string // e.g. providers[1].auth_type
	Msg  string
}

// Error lists every problem found in one config file.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = e.describe(p)
	}
	return strings.Join(lines, "\n")
}

func (e *Error) describe(p Problem) string {
	var b strings.Builder
	b.WriteString(e.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ": line %d", p.Line)
	}
	if p.Key != "" {
		b.WriteString(": " + p.Key)
	}
	b.WriteString(": " + p.Msg)
	return b.String()
}

type validator struct {
	cfg      *Config
	lines    map[string]int
	problems []Problem
	warnings []string
}

func (v *validator) fail(key, format string, args ...any) {
	v.problems = append(v.problems, Problem{Line: v.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// line finds key's line, falling back to its enclosing table's.
func (v *validator) line(key string) int { return v.cfg.line(key) }

func (v *validator) warn(format string, args ...any) {
	v.warnings = append(v.warnings, fmt.Sprintf(format, args...))
}

// unknownKeys reports keys that the schema does not have (typos like auth_typ).
func (v *validator) unknownKeys(md toml.MetaData) {
	undecoded := map[string]bool{}
	for _, k := range md.Undecoded() {
		undecoded[k.String()] = true
	}
	counts := map[string]int{} // array-of-tables occurrences, to name the index
	types := map[string]string{}
	warned := map[string]bool{}
	for _, k := range md.Keys() {
		path := indexedPath(k, md, counts, types)
		// Keys inside an unknown table are covered by the table's own report.
		if !undecoded[k.String()] || undecoded[k[:len(k)-1].String()] {
			continue
		}
		if fork := forkKey(k); fork != "" {
			if !warned[fork] {
				warned[fork] = true
				v.warn("%s is a setting of a claude-code-mux fork that ccmux ignores (%s)", fork, path)
			}
			continue
		}
		v.fail(path, "unknown key %q", k[len(k)-1])
	}
}

// forkKeys are settings that forks of claude-code-mux add to its schema. A
// file written for one of them still loads in ccmux, which ignores them.
var forkKeys = []string{
	"router.subagent",                     // hyonchoi/claude-code-mux
	"router.rules",                        // winffychu/claude-code-mux
	"models.mappings.strip_beta_options",  // hyonchoi/claude-code-mux
	"models.mappings.strip_specific_beta", // hyonchoi/claude-code-mux
}

// forkKey returns the entry of forkKeys that k is or lies under, or "".
func forkKey(k toml.Key) string {
	name := k.String()
	for _, f := range forkKeys {
		if name == f || strings.HasPrefix(name, f+".") {
			return f
		}
	}
	return ""
}

// portableSpellings warns about values ccmux reads but claude-code-mux
// does not, so that a file keeps working in both programs. It runs before
// applyDefaults normalises them.
func (v *validator) portableSpellings(md toml.MetaData) {
	c := v.cfg
	for i, p := range c.Providers {
		if a := strings.ToLower(p.AuthType); a != "" && a != "apikey" && a != "oauth" {
			v.warn(`providers[%d].auth_type = %q: claude-code-mux reads only "apikey" or "oauth" and refuses the file; write "apikey"`, i, p.AuthType)
		}
		if _, written := v.lines[fmt.Sprintf("providers[%d].base_url", i)]; written && p.BaseURL == "" {
			v.warn(`providers[%d].base_url = "": ccmux uses the built-in URL, but claude-code-mux sends requests to an empty URL; delete the line or comment it out`, i)
		}
	}
	for _, r := range []struct {
		key   string
		value string
	}{
		{"background", c.Router.Background},
		{"think", c.Router.Think},
		{"websearch", c.Router.WebSearch},
	} {
		if r.value == "" && md.IsDefined("router", r.key) {
			v.warn(`router.%s = "": ccmux treats it as unset, but claude-code-mux routes those requests to the model ""; delete the line or comment it out`, r.key)
		}
	}
}

// indexedPath turns a TOML key such as providers.auth_type into
// providers[1].auth_type, counting [[array]] headers in document order.
// types caches each prefix's TOML type: every prefix is built once from
// the one before it, not again from the start for each part.
func indexedPath(k toml.Key, md toml.MetaData, counts map[string]int, types map[string]string) string {
	var b, prefix strings.Builder
	for i := range k {
		if i > 0 {
			b.WriteByte('.')
			prefix.WriteByte('.')
		}
		b.WriteString(k[i])
		prefix.WriteString(k[i : i+1].String())
		p := prefix.String()
		typ, ok := types[p]
		if !ok {
			typ = md.Type(k[:i+1]...)
			types[p] = typ
		}
		if typ == "ArrayHash" {
			if i == len(k)-1 {
				counts[p]++
				// Deeper arrays restart when their parent advances.
				for c := range counts {
					if strings.HasPrefix(c, p+".") {
						delete(counts, c)
					}
				}
			}
			fmt.Fprintf(&b, "[%d]", counts[p]-1)
		}
	}
	return b.String()
}

func (v *validator) check() {
	c := v.cfg
	if c.Server.Port < 1 || c.Server.Port > 65535 {
		v.fail("server.port", "want a port from 1 to 65535, got %d", c.Server.Port)
	}
	if _, err := ParseLogLevel(c.Server.LogLevel); err != nil {
		v.fail("server.log_level", "%v", err)
	}
	if !isLoopbackHost(c.Server.Host) && c.Server.APIKey == "" {
		v.fail("server.host", "%q lets other machines reach the proxy and spend your subscription; set server.api_key too, or use 127.0.0.1", c.Server.Host)
	}
	for i, o := range c.Server.AllowedOrigins {
		if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			v.fail(fmt.Sprintf("server.allowed_origins[%d]", i), "want an origin like http://localhost:3000, got %q", o)
		}
	}
	if c.Server.Tracing.Enabled {
		v.warn("server.tracing is a claude-code-mux feature that ccmux ignores")
	}
	if c.Router.LongContextThreshold < 0 {
		v.fail("router.long_context_threshold", "want a positive number of tokens, got %d", c.Router.LongContextThreshold)
	}
	v.dashboard()
	v.regex("router.background_regex", c.Router.BackgroundRegex)
	v.regex("router.auto_map_regex", c.Router.AutoMapRegex)
	for i, r := range c.Router.PromptRules {
		v.regex(fmt.Sprintf("router.prompt_rules[%d].pattern", i), r.Pattern)
	}
	if len(c.Router.PromptRules) > 0 {
		v.warn("router.prompt_rules is a claude-code-mux feature that ccmux does not apply yet")
	}

	providers := map[string]int{}
	for i, p := range c.Providers {
		key := fmt.Sprintf("providers[%d]", i)
		switch {
		case p.Name == "":
			v.fail(key+".name", "every provider needs a name")
		case providers[p.Name] > 0:
			v.fail(key+".name", "provider %q is defined twice", p.Name)
		}
		providers[p.Name] = i + 1
		switch p.AuthType {
		case AuthAPIKey:
			if p.APIKey == "" && p.IsEnabled() {
				v.fail(key+".api_key", `auth_type = "apikey" needs an api_key (a key or "$ENV_VAR")`)
			}
		case AuthOAuth:
			if p.OAuthProvider == "" {
				v.fail(key+".auth_type", `auth_type = "oauth" needs oauth_provider (a token-store id such as "anthropic-max")`)
			}
		default:
			v.fail(key+".auth_type", `want "oauth" or "apikey", got %q`, p.AuthType)
		}
		if p.BaseURL != "" && !strings.HasPrefix(p.BaseURL, "http://") && !strings.HasPrefix(p.BaseURL, "https://") {
			v.fail(key+".base_url", "want an http:// or https:// URL, got %q", RedactURL(p.BaseURL))
		} else if p.IsEnabled() {
			v.upstream(key, p)
		}
	}

	models := map[string]bool{}
	for i, m := range c.Models {
		key := fmt.Sprintf("models[%d]", i)
		lower := strings.ToLower(m.Name)
		switch {
		case m.Name == "":
			v.fail(key+".name", "every model needs a name")
		case models[lower]:
			v.fail(key+".name", "model %q is defined twice", m.Name)
		}
		models[lower] = true
		if len(m.Mappings) == 0 {
			v.fail(key+".mappings", "model %q has no [[models.mappings]]", m.Name)
		}
		for j, mp := range m.Mappings {
			mkey := fmt.Sprintf("%s.mappings[%d]", key, j)
			if mp.ActualModel == "" {
				v.fail(mkey+".actual_model", "every mapping needs actual_model")
			}
			if mp.Priority < 0 {
				v.fail(mkey+".priority", "want 1 or more, got %d", mp.Priority)
			}
			idx, ok := providers[mp.Provider]
			switch {
			case !ok:
				v.fail(mkey+".provider", "no provider named %q", mp.Provider)
			case !c.Providers[idx-1].IsEnabled():
				v.fail(mkey+".provider", "provider %q is disabled (enabled = false)", mp.Provider)
			}
		}
	}

	if c.Router.Default == "" {
		v.fail("router.default", "set a default model (a [[models]] name or one matched by a provider's models)")
	} else if c.Router.Default == PlaceholderModel && !c.resolves(PlaceholderModel) {
		// claude-code-mux writes this on its first run; refusing to start
		// would leave a user who switches over with nothing running.
		v.warn(`router.default is claude-code-mux's "%s": requests for models no provider serves fail until you set router.default to a model a provider serves (to use a Claude subscription, copy the claude-max provider from ccmux's default config and set default = "claude-sonnet-4-5")`, PlaceholderModel)
	} else if !c.resolves(c.Router.Default) {
		v.fail("router.default", "model %q is neither a [[models]] name nor matched by an enabled provider's models", c.Router.Default)
	}
	for _, r := range []struct{ key, model string }{
		{"router.background", c.Router.Background},
		{"router.think", c.Router.Think},
		{"router.websearch", c.Router.WebSearch},
		{"router.long_context", c.Router.LongContext},
	} {
		if r.model != "" && !c.resolves(r.model) {
			v.fail(r.key, "model %q is neither a [[models]] name nor matched by an enabled provider's models", r.model)
		}
	}
	for id, o := range c.OAuth {
		switch o.Preset {
		case "", "claude", "console":
		default:
			v.fail("oauth."+id+".preset", `want "claude" or "console", got %q`, o.Preset)
		}
	}
}

// upstream checks where an enabled provider's requests, and its key, go.
func (v *validator) upstream(key string, p Provider) {
	typ := strings.ToLower(p.ProviderType)
	switch {
	case !knownType(p.ProviderType):
		v.unknownType(key, p.ProviderType)
	case isOpenAIType(typ):
		v.openaiUpstream(key, p)
	case !p.SpeaksAnthropic():
		v.warn("%s (%s): provider_type %q is not Anthropic-compatible; ccmux skips this provider (%s) and every mapping to it", key, p.Name, p.ProviderType, modelsOf(p))
	case p.Upstream() == "":
		v.fail(key+".base_url", "provider_type %q has no built-in URL: set base_url to the vendor's Anthropic-compatible endpoint", p.ProviderType)
	case typ != "anthropic" && isAnthropicHost(p.Upstream()):
		// A vendor's key sent to Anthropic is refused at best and leaked at worst.
		v.fail(key+".base_url", "provider_type %q names a vendor, but its requests would go to api.anthropic.com; remove base_url to use %s, or set provider_type = \"anthropic\"", p.ProviderType, orNone(anthropicTypes[typ]))
	}
}

func orNone(u string) string {
	if u == "" {
		return "the vendor's endpoint"
	}
	return u
}

// isLoopbackHost reports whether host (a name or an IP, brackets allowed)
// is only reachable from this machine.
func isLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isAnthropicHost reports whether rawURL points at Anthropic's API.
func isAnthropicHost(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	h := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	return h == "api.anthropic.com"
}

// resolves reports whether model reaches at least one enabled provider.
func (c *Config) resolves(model string) bool {
	if _, ok := c.Model(model); ok {
		return true
	}
	for _, p := range c.Providers {
		if !p.IsEnabled() {
			continue
		}
		for _, g := range p.Models {
			if MatchGlob(g, model) {
				return true
			}
		}
	}
	return false
}

func (v *validator) regex(key, expr string) {
	if expr == "" {
		return
	}
	if _, err := regexp.Compile(expr); err != nil {
		v.fail(key, "invalid regular expression: %s", regexpReason(err))
	}
}

func regexpReason(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}
