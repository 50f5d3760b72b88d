//go:build linux || darwin || freebsd || netbsd || openbsd

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// lockProject makes sure only one chaos run drives a project at a time on
// this machine: a second one would start by removing the first one's
// cluster. The lock goes with the process, however it ends.
func lockProject(project string) (release func(), err error) {
	path := filepath.Join(os.TempDir(), "metasrv-chaos-"+project+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("another chaos run (pid %s) is using project %s (lock %s); wait for it or pick another -project and -port-base",
			strings.TrimSpace(string(owner)), project, path)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("%d\n", os.Getpid())), 0)
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
