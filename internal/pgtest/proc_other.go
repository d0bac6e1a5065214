//go:build !linux

package pgtest

import (
	"errors"
	"syscall"
	"time"
)

// supported reports whether Start can run a server on this system: the
// parent-death signal and /proc that keep servers from outliving their test
// binary are Linux's. Elsewhere, set PAPAYD_TEST_DATABASE_URL.
const supported = false

func sysProcAttr(uid, gid uint32, switchUser bool) *syscall.SysProcAttr { return nil }

func processStart(pid int) (uint64, error) { return 0, errors.ErrUnsupported }

func childPIDs(pid int) []int { return nil }

func kill(pid int) {}

func commandLine(pid int) string { return "" }

func removeShm(key, id int, wait time.Duration) {}
