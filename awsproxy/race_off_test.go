//go:build !race

package awsproxy

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = false
