//go:build unix

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockStateFile takes an exclusive lock on path (created 0600) until the returned
// function is called or the process ends, so that two sandboxes never write one state
// file. A lock held by another is errStateBusy.
func lockStateFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s is locked)", errStateBusy, path)
		}
		return nil, err
	}
	return func() { _ = f.Close() }, nil
}
