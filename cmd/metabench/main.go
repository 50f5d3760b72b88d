// Command metabench measures a real 3-node metasrv cluster, started as
// separate processes on loopback with deploy/localcluster:
//
//  1. maintenance writes (alternating enable=true/false POSTs): ops/s, p50
//     and p99 at each concurrency, directly on the leader and through a
//     follower, side by side in the same run;
//  2. leader failover: kill -9 the leader, time until the next write is
//     acknowledged by a surviving node, over N trials, with each set of
//     raft timeouts;
//  3. leader stability: a long run at high concurrency on the leader,
//     counting leader changes (the target is none).
//
// It prints a markdown report and writes it to -out. Usage:
//
//	make build && go run ./cmd/metabench -bin bin -out docs/benchmarks.md
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type config struct {
	bin, out, dir string
	keep          bool
	sections      map[string]bool

	writes    writeOpts
	failover  failoverOpts
	foSets    []timeoutSet
	stability stabilityOpts
	stSets    []timeoutSet
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("metabench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := &config{}
	var sections, concs, foSets, stSets string
	fs.StringVar(&cfg.bin, "bin", "bin", "directory holding the metasrv binary (or the binary itself)")
	fs.StringVar(&cfg.out, "out", "", "also write the markdown report to this file")
	fs.StringVar(&cfg.dir, "dir", "", "scratch directory for data and logs (default: a new temporary directory)")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the scratch directory (it is always kept after a failure)")
	fs.StringVar(&sections, "sections", "writes,failover,stability", "sections to run: writes, failover, stability")

	fs.StringVar(&concs, "conc", "1,64", "write concurrencies (closed-loop clients)")
	fs.IntVar(&cfg.writes.runs, "runs", 5, "write runs (a fresh cluster each); figures are medians over runs")
	fs.DurationVar(&cfg.writes.duration, "duration", 10*time.Second, "measured duration of each write cell")
	fs.DurationVar(&cfg.writes.warmup, "warmup", time.Second, "unmeasured warm-up before each write cell")
	fs.Int64Var(&cfg.writes.maxOps, "max-ops", 2_000_000, "upper bound on writes per cell (a cell ends at -duration or -max-ops)")
	fs.DurationVar(&cfg.writes.reqTimeout, "req-timeout", 10*time.Second, "per-request timeout under load")

	fs.IntVar(&cfg.failover.trials, "trials", 10, "leader kills per timeout set")
	fs.DurationVar(&cfg.failover.reqTimeout, "failover-req-timeout", 250*time.Millisecond, "per-request timeout of the writes sent after a kill")
	fs.DurationVar(&cfg.failover.giveUp, "failover-give-up", 30*time.Second, "a trial fails when no write is acknowledged within this")
	fs.StringVar(&foSets, "failover-timeouts", "default,fast=150ms/150ms/150ms,slow=500ms/500ms/500ms,hashicorp=1s/1s/500ms",
		"raft timeout sets for failover: default (the binary's own) or NAME=HEARTBEAT/ELECTION/LEASE, comma separated")

	fs.DurationVar(&cfg.stability.duration, "stability-duration", 60*time.Second, "length of the leader-stability run")
	fs.IntVar(&cfg.stability.conc, "stability-conc", 64, "write concurrency of the leader-stability run")
	fs.StringVar(&stSets, "stability-timeouts", "default", "raft timeout sets for the leader-stability run (same syntax)")
	fs.DurationVar(&cfg.stability.poll, "stability-poll", 250*time.Millisecond, "how often the stability run polls GET /admin/raft")

	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.stability.maxOps = 0
	cfg.stability.reqTimeout = cfg.writes.reqTimeout
	cfg.sections = map[string]bool{}
	for _, s := range strings.Split(sections, ",") {
		s = strings.TrimSpace(s)
		switch s {
		case "writes", "failover", "stability":
			cfg.sections[s] = true
		case "":
		default:
			return nil, fmt.Errorf("-sections: unknown section %q", s)
		}
	}
	for _, s := range strings.Split(concs, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 1 {
			return nil, fmt.Errorf("-conc: bad concurrency %q", s)
		}
		cfg.writes.concs = append(cfg.writes.concs, c)
	}
	var err error
	if cfg.foSets, err = parseTimeoutSets(foSets); err != nil {
		return nil, fmt.Errorf("-failover-timeouts: %w", err)
	}
	if cfg.stSets, err = parseTimeoutSets(stSets); err != nil {
		return nil, fmt.Errorf("-stability-timeouts: %w", err)
	}
	switch {
	case cfg.writes.runs < 1:
		return nil, errors.New("-runs must be at least 1")
	case cfg.failover.trials < 1:
		return nil, errors.New("-trials must be at least 1")
	case cfg.writes.duration <= 0 || cfg.stability.duration <= 0:
		return nil, errors.New("-duration and -stability-duration must be positive")
	}
	bin, err := filepath.Abs(cfg.bin)
	if err != nil {
		return nil, err
	}
	if !fileExists(bin) {
		bin = filepath.Join(bin, "metasrv")
	}
	if !fileExists(bin) {
		return nil, fmt.Errorf("-bin %s: no metasrv binary there (run make build)", cfg.bin)
	}
	cfg.bin = bin
	return cfg, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "metabench: %v\n", err)
		return 2
	}
	dir := cfg.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "metabench-"); err != nil {
			fmt.Fprintf(stderr, "metabench: %v\n", err)
			return 1
		}
	}
	maxConc := cfg.stability.conc
	for _, c := range cfg.writes.concs {
		maxConc = max(maxConc, c)
	}
	e := &env{bin: cfg.bin, dir: dir, client: newClient(maxConc),
		logf: func(format string, a ...any) {
			fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
		}}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(stderr, "metabench: %s: stopping every cluster (data in %s)\n", s, dir)
		e.closeAll()
		os.Exit(130)
	}()
	defer e.closeAll()

	rep := &report{args: args, started: time.Now(), version: binaryVersion(cfg.bin), cfg: cfg}
	e.logf("metabench: %s, scratch %s", rep.version, dir)
	failed := func(err error) int {
		fmt.Fprintf(stderr, "metabench: %v\nscratch directory (logs) kept: %s\n", err, dir)
		return 1
	}
	if cfg.sections["writes"] {
		if rep.writes, err = runWrites(e, cfg.writes); err != nil {
			return failed(err)
		}
	}
	if cfg.sections["failover"] {
		for _, set := range cfg.foSets {
			r, err := runFailover(e, set, cfg.failover)
			if err != nil {
				return failed(fmt.Errorf("failover %s: %w", set.Name, err))
			}
			rep.failover = append(rep.failover, r)
		}
	}
	if cfg.sections["stability"] {
		for _, set := range cfg.stSets {
			r, err := runStability(e, set, cfg.stability)
			if err != nil {
				return failed(fmt.Errorf("stability %s: %w", set.Name, err))
			}
			rep.stability = append(rep.stability, r)
		}
	}
	rep.finished = time.Now()
	md := rep.markdown()
	fmt.Fprint(stdout, md)
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(md), 0o644); err != nil {
			return failed(err)
		}
		e.logf("report written to %s", cfg.out)
	}
	e.closeAll()
	if !cfg.keep && cfg.dir == "" {
		_ = os.RemoveAll(dir)
	}
	return 0
}

func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	return string(out), err
}
