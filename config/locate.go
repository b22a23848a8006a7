package config

import (
	"errors"
	"fmt"
	"strings"
)

// Locate prefixes an error about one key of c, such as an *EnvError from
// ServerAPIKey, with the file and the key's line, as Parse's problems read.
// Other errors get the file only; the result unwraps to err.
func (c *Config) Locate(err error) error {
	if err == nil {
		return nil
	}
	name := c.Path
	if name == "" {
		name = "the config file"
	}
	var env *EnvError
	if errors.As(err, &env) {
		if n := c.line(env.Key); n > 0 {
			return fmt.Errorf("%s: line %d: %w", name, n, err)
		}
	}
	return fmt.Errorf("%s: %w", name, err)
}

// line finds key's line in the file, falling back to its enclosing
// table's; 0 when unknown.
func (c *Config) line(key string) int {
	for k := key; k != ""; {
		if n, ok := c.lines[k]; ok {
			return n
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}
