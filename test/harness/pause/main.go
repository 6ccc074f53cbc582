// Command pause is the sandbox ("pause") process of the harness's offline pod sandbox image,
// pinned as registry.k8s.io/pause:3.10.2. Like the real pause it sleeps until SIGINT or
// SIGTERM and, as PID 1 of a shared PID namespace, reaps its children. It is built with
// CGO_ENABLED=0 so the image is one static file.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
