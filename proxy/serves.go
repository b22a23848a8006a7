package proxy

// Serves lists where a request for model goes when no rule replaces it: a
// [[models]] entry's mappings by priority (those whose provider is disabled
// or skipped left out), else every usable provider whose models patterns
// match it. It is empty when only router.default would take the request.
// `ccmux config check` prints it.
func (r *Router) Serves(model string) []Candidate {
	return r.resolve(model)
}
