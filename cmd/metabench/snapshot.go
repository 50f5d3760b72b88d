package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// snapshotResult is the output of the fsm package's snapshot benchmarks
// (go test -bench), by benchmark name: metric unit → value.
type snapshotResult struct {
	command string
	benches []benchLine
}

type benchLine struct {
	name    string
	n       int
	metrics map[string]float64
	units   []string
}

// runSnapshotBench runs the in-process FSM benchmarks (1 000 000 regions)
// with go test in the module that holds this command.
func runSnapshotBench(e *env, benchtime string) (*snapshotResult, error) {
	root, err := findModuleRoot()
	if err != nil {
		return nil, err
	}
	args := []string{"test", "-run", "^$", "-bench", "Snapshot1MRegions|RegionsOf", "-benchtime", benchtime, "./fsm"}
	res := &snapshotResult{command: "go " + strings.Join(args, " ")}
	e.logf("snapshot: %s", res.command)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: %v\n%s", res.command, err, tail(out, 3000))
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		b := benchLine{name: strings.TrimPrefix(f[0], "Benchmark"), metrics: map[string]float64{}}
		if i := strings.LastIndexByte(b.name, '-'); i > 0 {
			b.name = b.name[:i]
		}
		b.n, _ = strconv.Atoi(f[1])
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			b.metrics[f[i+1]] = v
			b.units = append(b.units, f[i+1])
		}
		res.benches = append(res.benches, b)
		e.logf("snapshot: %s", strings.TrimSpace(line))
	}
	if len(res.benches) == 0 {
		return nil, fmt.Errorf("%s: no benchmark line in the output:\n%s", res.command, tail(out, 3000))
	}
	return res, nil
}

func (r *snapshotResult) metric(bench, unit string) (float64, bool) {
	for _, b := range r.benches {
		if b.name == bench {
			v, ok := b.metrics[unit]
			return v, ok
		}
	}
	return 0, false
}

func findModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory (run metabench from the repository)")
		}
		dir = parent
	}
}
