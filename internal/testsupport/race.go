//go:build !race

package testsupport

// Race reports whether the test binary was built with -race, under which
// SQLite (translated to Go) and the browser tests run many times slower:
// timing limits then do not apply.
const Race = false
