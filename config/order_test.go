package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// A typo in a key name is the cause of what follows from it (here, the
// provider reads as an api-key provider without a key): the unknown key is
// reported first, whatever its line.
func TestUnknownKeysComeFirst(t *testing.T) {
	text := strings.Replace(DefaultTOML, `auth_type = "oauth"`, `auth_typ = "oauth"`, 1)
	_, err := Parse("config.toml", []byte(text))
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) < 2 {
		t.Fatalf("want two problems, got %v", err)
	}
	if got := ce.Problems[0]; got.Key != "providers[0].auth_typ" || !strings.Contains(got.Msg, "unknown key") {
		t.Errorf("first problem: %+v, want the unknown key auth_typ\n%v", got, err)
	}
}

// An unset "$NAME" is reported with the line of its key, like every other
// problem.
func TestEnvErrorHasItsLine(t *testing.T) {
	t.Setenv("CCMUX_TEST_ORDER_UNSET", "")
	text := strings.Replace(DefaultTOML, "port = 13456\n", "port = 13456\napi_key = \"$CCMUX_TEST_ORDER_UNSET\"\n", 1)
	cfg, err := Parse("config.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Count(text[:strings.Index(text, "api_key = ")], "\n") + 1
	_, err = cfg.ServerAPIKey()
	want := fmt.Sprintf("config.toml: line %d: ", line) + "environment variable CCMUX_TEST_ORDER_UNSET (server.api_key) is not set"
	if got := cfg.Locate(err); got == nil || got.Error() != want {
		t.Errorf("got %v, want %s", got, want)
	}
	var env *EnvError
	if !errors.As(cfg.Locate(err), &env) {
		t.Error("the located error no longer unwraps to the EnvError")
	}
}
