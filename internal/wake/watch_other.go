//go:build !linux

package wake

// watch reports nothing here: Run relies on its ticker.
func watch() (<-chan struct{}, bool, func()) { return nil, false, func() {} }
