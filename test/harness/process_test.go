package harness

import (
	"os"
	"testing"
)

func TestRSSBytes(t *testing.T) {
	rss, err := rssBytes(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// A Go test binary is resident in more than 1 MiB and far less than 10 GiB.
	if rss < 1<<20 || rss > 10<<30 {
		t.Fatalf("rss = %d", rss)
	}
	if _, err := rssBytes(-1); err == nil {
		t.Fatal("no error for a missing process")
	}
}
