// Package logfields holds the conventions every patchgate log line follows,
// so that one parser reads them all: durations are milliseconds, a float
// with microsecond precision, under a key that ends in _ms.
package logfields

import (
	"math"
	"time"
)

// Ms is d in milliseconds, rounded to the microsecond: the value of every
// *_ms log field.
func Ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}
