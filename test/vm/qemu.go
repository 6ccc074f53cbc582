package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Boot describes one boot of the test guest.
type Boot struct {
	// Kernel and Initrd are the vmlinuz and the initramfs (test/vm/mkinitramfs.sh).
	Kernel, Initrd string
	// Scenario is passed to the guest as vmtest=<scenario>.
	Scenario string
	// Append holds extra kernel arguments, e.g. module.sig_enforce=1.
	Append []string
	// Log, when set, receives the raw serial output as it arrives.
	Log string
	// QEMU is the emulator binary; default qemu-system-x86_64.
	QEMU string
}

// Result is what one boot produced.
type Result struct {
	Run *Run
	// ParseErr is set when the console output broke the marker protocol.
	ParseErr error
	// Serial is the raw console output.
	Serial []byte
	// Stderr is qemu's own stderr.
	Stderr string
	// ExitErr is qemu's exit status (nil for exit 0); qemu exits 0 even when
	// the guest panics, so the run is judged by the guest's markers.
	ExitErr  error
	Duration time.Duration
}

// Args returns qemu's argv (without the binary): TCG only. /dev/kvm on these
// machines is a nested paravirtual KVM that cannot boot this kernel.
func (b Boot) Args() []string {
	appendLine := append([]string{"console=ttyS0", "panic=-1", "loglevel=3", "vmtest=" + b.Scenario}, b.Append...)
	return []string{
		"-accel", "tcg", "-m", "1024", "-smp", "2",
		"-kernel", b.Kernel, "-initrd", b.Initrd,
		"-append", strings.Join(appendLine, " "),
		"-nographic", "-no-reboot", "-monitor", "none",
	}
}

// Start boots the guest and returns when qemu exits or ctx ends (the guest
// powers itself off with `poweroff -f` at the end of its script).
func (b Boot) Start(ctx context.Context) (*Result, error) {
	bin := b.QEMU
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	if b.Kernel == "" || b.Initrd == "" || b.Scenario == "" {
		return nil, errors.New("vmtest: Boot needs Kernel, Initrd and Scenario")
	}
	var serial, stderr bytes.Buffer
	var out io.Writer = &serial
	var logFile *os.File
	if b.Log != "" {
		f, err := os.Create(b.Log)
		if err != nil {
			return nil, fmt.Errorf("vmtest: serial log: %w", err)
		}
		logFile = f
		out = io.MultiWriter(&serial, f)
	}
	cmd := exec.CommandContext(ctx, bin, b.Args()...)
	cmd.Stdout = out
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	if logFile != nil {
		if cerr := logFile.Close(); cerr != nil {
			return nil, fmt.Errorf("vmtest: serial log: %w", cerr)
		}
	}
	res := &Result{
		Serial:   serial.Bytes(),
		Stderr:   stderr.String(),
		ExitErr:  err,
		Duration: time.Since(start),
	}
	res.Run, res.ParseErr = Parse(bytes.NewReader(res.Serial))
	return res, nil
}
