package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
)

// clockTick is the unit of utime/stime in /proc/PID/stat (USER_HZ, 100 on
// Linux).
const clockTick = 10 * time.Millisecond

// selfKey is the benchmark's own entry in a cpuSample.
const selfKey = "client"

// cpuSample is the CPU time (user+system) consumed so far by each node of
// a cluster, by node id, plus the benchmark process itself under selfKey.
// Nodes are found as child processes of this one by their --data-dir.
type cpuSample map[string]time.Duration

func sampleCPU(c *localcluster.Cluster) cpuSample {
	return sampleCPUDirs(clusterDirs(c))
}

// clusterDirs maps each metasrv node's --data-dir to its id.
func clusterDirs(c *localcluster.Cluster) map[string]string {
	byDir := map[string]string{}
	for _, n := range c.Nodes() {
		byDir[filepath.Clean(n.DataDir)] = n.ID
	}
	return byDir
}

// sampleCPUDirs samples the child processes whose --data-dir is a key of
// byDir (metasrv or etcd), by the id it maps to.
func sampleCPUDirs(byDir map[string]string) cpuSample {
	s := cpuSample{}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s[selfKey] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	me := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return s
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, cpu, ok := procStat(pid)
		if !ok || ppid != me {
			continue
		}
		if id := nodeOf(pid, byDir); id != "" {
			s[id] = cpu
		}
	}
	return s
}

// procStat reads the parent pid and the CPU time of a process.
func procStat(pid int) (ppid int, cpu time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ppid, time.Duration(ut+st) * clockTick, true
}

func nodeOf(pid int, byDir map[string]string) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	args := strings.Split(string(b), "\x00")
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--data-dir" {
			return byDir[filepath.Clean(args[i+1])]
		}
	}
	return ""
}

// sub returns the CPU consumed between two samples.
func (s cpuSample) sub(before cpuSample) cpuSample {
	out := cpuSample{}
	for k, v := range s {
		if b, ok := before[k]; ok {
			out[k] = v - b
		}
	}
	return out
}

func (s cpuSample) total() time.Duration {
	var t time.Duration
	for _, v := range s {
		t += v
	}
	return t
}

// machineCPU returns the busy and total CPU time of the whole machine so
// far (from /proc/stat; idle and iowait count as not busy), so a cell can
// tell its own load from other tenants'.
func machineCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		d := time.Duration(n) * clockTick
		total += d
		if i != 3 && i != 4 { // idle, iowait
			busy += d
		}
	}
	// guest time is already counted in user time.
	if len(f) > 9 {
		for _, v := range f[9:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			d := time.Duration(n) * clockTick
			total -= d
			busy -= d
		}
	}
	return busy, total
}

// pidOf finds the child process whose --data-dir is dir (0 if none).
func pidOf(dir string) int {
	byDir := map[string]string{filepath.Clean(dir): "x"}
	me := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := procStat(pid); ok && ppid == me && nodeOf(pid, byDir) != "" {
			return pid
		}
	}
	return 0
}

// procMem returns a process's resident set and its peak (VmRSS, VmHWM)
// in bytes.
func procMem(pid int) (rss, peak int64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n * 1024
		case "VmHWM":
			peak = n * 1024
		}
	}
	return rss, peak
}

// procCPU is the CPU time (user+system) a process has used so far.
func procCPU(pid int) time.Duration {
	_, cpu, _ := procStat(pid)
	return cpu
}
