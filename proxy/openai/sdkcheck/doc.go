// Package sdkcheck holds no code, only tests: the official Anthropic Go SDK
// (github.com/anthropics/anthropic-sdk-go, a test-only dependency) parses
// every stream package openai translates, so a client nobody here wrote
// checks the event grammar. It is its own package so that the translator's
// tests and fuzz target build without the SDK.
package sdkcheck
