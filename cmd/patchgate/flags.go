package main

import (
	"fmt"
	"time"
)

// nowExample is the RFC 3339 example every --now error shows.
const nowExample = "2026-11-27T12:00:00Z"

// parseNow reads --now: an RFC 3339 time. The error says what was expected,
// never Go's reference layout.
func parseNow(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--now %q: want an RFC 3339 time, e.g. %s", s, nowExample)
	}
	return t, nil
}
