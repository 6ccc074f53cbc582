package livepatch

import (
	"io"
	"os"
	"testing"

	"github.com/sirupsen/logrus"
)

func TestMain(m *testing.M) {
	// The monitor and remediator log through the standard logger; keep test
	// output readable.
	logrus.SetOutput(io.Discard)
	os.Exit(m.Run())
}

// must returns v and panics (failing the test) on err; for set-up calls
// that cannot fail on the fixtures.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
