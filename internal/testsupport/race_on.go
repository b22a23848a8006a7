//go:build race

package testsupport

// Race reports whether the test binary was built with -race.
const Race = true
