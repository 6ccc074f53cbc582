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
