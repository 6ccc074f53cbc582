package livepatch

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadThisHost reads the machine the tests run on, host root "/": its
// real /proc and /sys. The release must be uname(2)'s, and what the kernel
// shows under /sys/kernel/livepatch must come back patch for patch.
func TestReadThisHost(t *testing.T) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var rel strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		rel.WriteByte(byte(c))
	}
	r, err := NewReader(WithProvider(ProviderSysfs))
	if err != nil {
		t.Fatal(err)
	}
	k := r.Read(context.Background())
	if k.Release != rel.String() {
		t.Errorf("release = %q, uname says %q", k.Release, rel.String())
	}
	if time.Since(k.ObservedAt) > time.Minute {
		t.Errorf("observedAt = %v", k.ObservedAt)
	}
	entries, err := os.ReadDir("/sys/kernel/livepatch")
	switch {
	case os.IsNotExist(err):
		if len(k.Patches) != 0 || len(k.Unknown) != 0 {
			t.Errorf("no livepatch support here, got patches %+v unknown %+v", k.Patches, k.Unknown)
		}
	case err != nil:
		t.Skipf("cannot list /sys/kernel/livepatch: %v", err)
	default:
		if len(k.Patches) != len(entries) {
			t.Errorf("%d patches read, %d directories in /sys/kernel/livepatch", len(k.Patches), len(entries))
		}
	}
	b, err := os.ReadFile("/proc/sys/kernel/tainted")
	if err == nil {
		want := strings.TrimSpace(string(b)) != "0" && taintBit(strings.TrimSpace(string(b)))
		if k.LivepatchTainted != want {
			t.Errorf("livepatchTainted = %v, /proc/sys/kernel/tainted = %s", k.LivepatchTainted, b)
		}
	}
}

func taintBit(s string) bool {
	var v uint64
	for _, c := range s {
		v = v*10 + uint64(c-'0')
	}
	return v&taintLivepatch != 0
}
