package logfields

import (
	"testing"
	"time"
)

func TestMs(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want float64
	}{
		{0, 0},
		{1500 * time.Microsecond, 1.5},
		{1234567 * time.Nanosecond, 1.235},
		{2 * time.Second, 2000},
		{-3 * time.Millisecond, -3},
	} {
		if got := Ms(tc.d); got != tc.want {
			t.Errorf("Ms(%v) = %v, want %v", tc.d, got, tc.want)
		}
	}
}
