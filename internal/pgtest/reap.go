package pgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ownerFile, in a cluster's directory, names the test process that owns it:
// "pid start-time".
const ownerFile = "owner"

// youngDir is how long a directory without an owner file is taken to be
// one another process is creating.
const youngDir = time.Minute

// writeOwner records the current process as the owner of dir.
func writeOwner(dir string) error {
	pid := os.Getpid()
	start, err := processStart(pid)
	if err != nil {
		return fmt.Errorf("owner: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, ownerFile), fmt.Appendf(nil, "%d %d\n", pid, start), 0o644)
}

// ownerAlive reports whether the process recorded in dir's owner file runs;
// ok is false when there is no readable owner file.
func ownerAlive(dir string) (alive, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return false, false
	}
	var pid int
	var start uint64
	if _, err := fmt.Sscan(string(b), &pid, &start); err != nil {
		return false, false
	}
	now, err := processStart(pid)
	return err == nil && now == start, true
}

// reapStale removes the cluster directories under tmp whose owning test
// process is gone, stopping what still runs there.
func reapStale(tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, dirPrefix+"*"))
	for _, dir := range dirs {
		alive, ok := ownerAlive(dir)
		if alive {
			continue
		}
		if !ok {
			fi, err := os.Stat(dir)
			if err != nil || time.Since(fi.ModTime()) < youngDir {
				continue
			}
		}
		reap(dir)
	}
}

// reap kills the server of a dead owner's directory, removes its shared
// memory and then the directory.
func reap(dir string) {
	data := filepath.Join(dir, "data")
	if pid := postmasterPID(data); pid > 0 && strings.Contains(commandLine(pid), data) {
		kids := childPIDs(pid)
		kill(pid)
		killAll(kids)
		waitGone(append(kids, pid), 5*time.Second)
	}
	key, shm := shmOf(data)
	removeShm(key, shm, 5*time.Second)
	_ = os.RemoveAll(dir)
}

// postmasterPID returns the pid postmaster.pid in data records, or 0.
func postmasterPID(data string) int {
	lines := pidFileLines(data)
	if len(lines) < 1 {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(lines[0]))
	return pid
}

// shmOf returns the System V shared memory key and id postmaster.pid in data
// records, or -1s.
func shmOf(data string) (key, id int) {
	lines := pidFileLines(data)
	if len(lines) < 7 {
		return -1, -1
	}
	f := strings.Fields(lines[6])
	if len(f) != 2 {
		return -1, -1
	}
	k, err1 := strconv.Atoi(f[0])
	i, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return -1, -1
	}
	return k, i
}

func pidFileLines(data string) []string {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return nil
	}
	return strings.Split(string(b), "\n")
}

// killAll kills each pid.
func killAll(pids []int) {
	for _, p := range pids {
		kill(p)
	}
}

// waitGone waits up to d for the processes to exit.
func waitGone(pids []int, d time.Duration) {
	deadline := time.Now().Add(d)
	for _, p := range pids {
		for time.Now().Before(deadline) {
			if _, err := processStart(p); err != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
