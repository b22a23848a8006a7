//go:build !linux

package wake

import "time"

// DefaultEvery is how often a Detector looks. Here no kernel report of a
// resume or an address change is read, so this is the delay before a
// wake is noticed; each look wakes the process (a few context switches).
const DefaultEvery = 30 * time.Second

// watch reports nothing here: Run relies on its ticker.
func watch() (<-chan struct{}, func()) { return nil, func() {} }
