package pgtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// supported reports whether Start can run a server on this system.
const supported = true

// sysProcAttr runs a PostgreSQL program as uid:gid when switch is true, in its
// own process group (a terminal's Ctrl-C reaches the test binary, not the
// server), and killed when the thread that started it ends. Start keeps that
// thread alive, locked, for as long as the server runs, so the signal comes
// when the test process dies.
func sysProcAttr(uid, gid uint32, switchUser bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if switchUser {
		a.Credential = &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}
	}
	return a
}

// processStart returns the start time of process pid (clock ticks since
// boot), which with the pid names a process even after the pid is reused.
func processStart(pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	f, err := statFields(b)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("process %d: exited", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// statFields returns the fields of /proc/PID/stat after the command name,
// starting with the state (field 3 of proc(5)).
func statFields(b []byte) ([]string, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("malformed")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return nil, fmt.Errorf("malformed")
	}
	return f, nil
}

// childPIDs returns the live processes whose parent is pid.
func childPIDs(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f, err := statFields(b)
		if err != nil || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}

// kill sends SIGKILL to process pid.
func kill(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) }

// commandLine returns the arguments of process pid joined by spaces.
func commandLine(pid int) string {
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

// removeShm removes the System V shared memory segment id if it still has
// the key a dead server recorded, once no process attaches it: the server's
// last children may take a moment to exit, so it waits up to wait.
func removeShm(key, id int, wait time.Duration) {
	deadline := time.Now().Add(wait)
	for {
		var d unix.SysvShmDesc
		if _, err := unix.SysvShmCtl(id, unix.IPC_STAT, &d); err != nil || int(d.Perm.Key) != key {
			return
		}
		if d.Nattch == 0 {
			_, _ = unix.SysvShmCtl(id, unix.IPC_RMID, nil)
			return
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
