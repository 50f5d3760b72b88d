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
//     counting leader changes (the target is none);
//  4. TLS cost: writes on the leader and through a follower, and leader
//     failover, on plaintext and TLS clusters in alternating cells of the
//     same run, with TLS ÷ plaintext ratios and the handshakes counted.
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
	"runtime/pprof"
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
	cpuProfile    string
	keep          bool
	sections      map[string]bool

	writes    writeOpts
	failover  failoverOpts
	foSets    []timeoutSet
	stability stabilityOpts
	stSets    []timeoutSet

	compare   compareOpts
	fcSets    []timeoutSet
	fcOpts    failoverOpts
	reaction  reactionOpts
	scale     scaleOpts
	scaleArgs []string
	benchtime string

	tls tlsOpts

	stabilityArgs []string
	analysis      string // markdown appended to a bench-compare report
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("metabench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := &config{}
	var err0 error
	var sections, concs, foSets, stSets string
	fs.StringVar(&cfg.bin, "bin", "bin", "directory holding the metasrv binary (or the binary itself)")
	fs.StringVar(&cfg.out, "out", "", "also write the markdown report to this file")
	fs.StringVar(&cfg.dir, "dir", "", "scratch directory for data and logs (default: a new temporary directory)")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of metabench itself (the load generator) to this file")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the scratch directory (it is always kept after a failure)")
	fs.StringVar(&sections, "sections", "writes,failover,stability,tls",
		"sections to run: writes, failover, stability, tls (make bench); compare, failover-compare, reaction, scale, snapshot (make bench-compare, side by side with etcd)")

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

	fs.IntVar(&cfg.tls.runs, "tls-runs", 5, "tls: pairs of cells (a fresh plaintext cluster, then a fresh TLS cluster)")
	fs.IntVar(&cfg.tls.conc, "tls-conc", 64, "tls: write concurrency")
	fs.DurationVar(&cfg.tls.duration, "tls-duration", 5*time.Second, "tls: measured duration of each write cell")
	fs.DurationVar(&cfg.tls.warmup, "tls-warmup", time.Second, "tls: unmeasured warm-up before each write cell")
	fs.IntVar(&cfg.tls.trials, "tls-trials", 4, "tls: leader kills per cell")
	fs.DurationVar(&cfg.tls.budget, "tls-budget", 6*time.Minute, "tls: no new pair of cells starts after this much time in the section")
	fs.StringVar(&cfg.analysis, "analysis", "", "markdown file appended to a bench-compare report (what stands in the way of missed targets)")
	var stArgs string
	fs.StringVar(&stArgs, "stability-args", "", "stability: extra metasrv flags (space separated)")
	var cmpConcs, cmpReadConcs, cmpArgs, fcSets, rSets, rTrials, scaleNs, scaleArgs string
	fs.StringVar(&cmpConcs, "compare-conc", "1,16,64", "compare: write concurrencies")
	fs.StringVar(&cmpReadConcs, "compare-read-conc", "16", "compare: read concurrencies")
	fs.IntVar(&cfg.compare.runs, "compare-runs", 3, "compare: runs (fresh metasrv and etcd clusters each); figures are medians over runs")
	fs.DurationVar(&cfg.compare.duration, "compare-duration", 5*time.Second, "compare: measured duration of each cell")
	fs.DurationVar(&cfg.compare.warmup, "compare-warmup", time.Second, "compare: unmeasured warm-up before each cell")
	fs.StringVar(&cmpArgs, "compare-args", "--log-level info", "compare, failover-compare, stability in bench-compare: extra metasrv flags (space separated)")
	fs.StringVar(&fcSets, "failover-compare-timeouts", "default,hashicorp=1s/1s/500ms", "failover-compare: metasrv raft timeout sets, measured next to etcd's defaults")
	fs.IntVar(&cfg.fcOpts.trials, "failover-compare-trials", 20, "failover-compare: leader kills per set (etcd too)")
	fs.StringVar(&rSets, "reaction-sets", "greptimedb,fast", "reaction: datanode failure-detection timing sets (greptimedb, fast)")
	fs.StringVar(&rTrials, "reaction-trials", "greptimedb=7,fast=15", "reaction: datanode kills per set")
	fs.IntVar(&cfg.reaction.regions, "reaction-regions", 30, "reaction: regions in the table")
	fs.IntVar(&cfg.reaction.datanodes, "reaction-datanodes", 3, "reaction: datanode processes")
	fs.StringVar(&scaleNs, "scale", "1000,5000", "scale: simulated datanode counts")
	fs.IntVar(&cfg.scale.regions, "scale-regions", 100, "scale: regions per simulated datanode")
	fs.DurationVar(&cfg.scale.interval, "scale-interval", 3*time.Second, "scale: heartbeat interval")
	fs.DurationVar(&cfg.scale.measure, "scale-measure", 30*time.Second, "scale: measured window")
	fs.DurationVar(&cfg.scale.settle, "scale-settle", 4*time.Minute, "scale: bound on registration, table creation and first opens")
	fs.IntVar(&cfg.scale.inflight, "scale-inflight", 128, "scale: bound on concurrent heartbeat requests")
	fs.StringVar(&scaleArgs, "scale-args", "--log-level info", "scale: extra metasrv flags (space separated)")
	fs.StringVar(&cfg.benchtime, "snapshot-benchtime", "3x", "snapshot: -benchtime of go test -bench Snapshot ./fsm")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	cfg.compare.maxOps, cfg.compare.reqTimeout = cfg.writes.maxOps, cfg.writes.reqTimeout
	cfg.compare.oursArgs = strings.Fields(cmpArgs)
	cfg.scaleArgs = strings.Fields(scaleArgs)
	cfg.stabilityArgs = strings.Fields(stArgs)
	cfg.scale.reqTimeout = cfg.scale.interval
	cfg.fcOpts.reqTimeout, cfg.fcOpts.giveUp = cfg.failover.reqTimeout, cfg.failover.giveUp
	var perr error
	ints := func(name, v string) []int {
		var out []int
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				perr = fmt.Errorf("-%s: bad number %q", name, f)
			}
			out = append(out, n)
		}
		return out
	}
	cfg.compare.concs = ints("compare-conc", cmpConcs)
	cfg.compare.readConcs = ints("compare-read-conc", cmpReadConcs)
	cfg.scale.datanodes = ints("scale", scaleNs)
	if perr != nil {
		return nil, perr
	}
	for _, r := range strings.Split(rSets, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		if _, ok := reactionSets[r]; !ok {
			return nil, fmt.Errorf("-reaction-sets: unknown set %q (greptimedb, fast)", r)
		}
		cfg.reaction.sets = append(cfg.reaction.sets, r)
	}
	cfg.reaction.trials = map[string]int{}
	for _, kv := range strings.Split(rTrials, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 1 {
			return nil, fmt.Errorf("-reaction-trials: want SET=N,... got %q", kv)
		}
		cfg.reaction.trials[k] = n
	}
	cfg.reaction.giveUp = 90 * time.Second
	if cfg.fcSets, err0 = parseTimeoutSets(fcSets); err0 != nil {
		return nil, fmt.Errorf("-failover-compare-timeouts: %w", err0)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.tls.maxOps, cfg.tls.reqTimeout = cfg.writes.maxOps, cfg.writes.reqTimeout
	cfg.tls.failover = failoverOpts{trials: cfg.tls.trials, reqTimeout: cfg.failover.reqTimeout, giveUp: cfg.failover.giveUp}
	cfg.stability.maxOps = 0
	cfg.stability.reqTimeout = cfg.writes.reqTimeout
	cfg.sections = map[string]bool{}
	for _, s := range strings.Split(sections, ",") {
		s = strings.TrimSpace(s)
		switch s {
		case "writes", "failover", "stability", "tls", "compare", "failover-compare", "reaction", "scale", "snapshot":
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
	case cfg.tls.runs < 1 || cfg.tls.trials < 1 || cfg.tls.conc < 1 || cfg.tls.duration <= 0:
		return nil, errors.New("-tls-runs, -tls-trials, -tls-conc and -tls-duration must be positive")
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
	maxConc := max(cfg.stability.conc, cfg.tls.conc)
	for _, c := range cfg.writes.concs {
		maxConc = max(maxConc, c)
	}
	for _, c := range cfg.compare.concs {
		maxConc = max(maxConc, c)
	}
	for _, c := range cfg.compare.readConcs {
		maxConc = max(maxConc, c)
	}
	e := &env{bin: cfg.bin, dir: dir, client: newClient(maxConc), dnBin: filepath.Join(filepath.Dir(cfg.bin), "datanode"),
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

	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "metabench: -cpuprofile: %v\n", err)
			return 1
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	rep := &report{args: args, started: time.Now(), version: binaryVersion(cfg.bin), cfg: cfg}
	e.logf("metabench: %s, scratch %s", rep.version, dir)
	failed := func(err error) int {
		fmt.Fprintf(stderr, "metabench: %v\nscratch directory (logs) kept: %s\n", err, dir)
		return 1
	}
	if cfg.sections["compare"] || cfg.sections["failover-compare"] {
		if e.etcdBin, err = ensureEtcd(e.logf); err != nil {
			return failed(fmt.Errorf("etcd: %w", err))
		}
		rep.etcdVersion = etcdVersion(e.etcdBin)
		e.logf("etcd: %s (%s)", e.etcdBin, rep.etcdVersion)
	}
	if cfg.sections["snapshot"] {
		if rep.snapshot, err = runSnapshotBench(e, cfg.benchtime); err != nil {
			return failed(fmt.Errorf("snapshot: %w", err))
		}
	}
	if cfg.sections["compare"] {
		if rep.compare, err = runCompare(e, cfg.compare); err != nil {
			return failed(err)
		}
	}
	if cfg.sections["failover-compare"] {
		for _, set := range cfg.fcSets {
			set.Args = append(append([]string{}, set.Args...), cfg.compare.oursArgs...)
			r, err := runFailover(e, set, cfg.fcOpts)
			if err != nil {
				return failed(fmt.Errorf("failover %s: %w", set.Name, err))
			}
			rep.fcOurs = append(rep.fcOurs, r)
		}
		if rep.fcEtcd, err = runFailoverEtcd(e, cfg.fcOpts); err != nil {
			return failed(fmt.Errorf("failover etcd: %w", err))
		}
	}
	if cfg.sections["reaction"] {
		if !fileExists(e.dnBin) {
			return failed(fmt.Errorf("reaction: no datanode binary at %s (run make build)", e.dnBin))
		}
		for _, name := range cfg.reaction.sets {
			r, err := runReaction(e, reactionSets[name], max(cfg.reaction.trials[name], 1), cfg.reaction)
			if err != nil {
				return failed(fmt.Errorf("reaction %s: %w", name, err))
			}
			rep.reaction = append(rep.reaction, r)
		}
	}
	if cfg.sections["scale"] {
		for _, n := range cfg.scale.datanodes {
			r, err := runScale(e, n, cfg.scale, cfg.scaleArgs)
			if err != nil {
				// A size the leader cannot reach is a result, not a crash.
				e.logf("scale %d: FAILED: %v", n, err)
				rep.scaleErrs = append(rep.scaleErrs, fmt.Sprintf("%d datanodes × %d regions: %v", n, cfg.scale.regions, err))
				continue
			}
			rep.scale = append(rep.scale, r)
		}
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
			set.Args = append(append([]string{}, set.Args...), cfg.stabilityArgs...)
			r, err := runStability(e, set, cfg.stability)
			if err != nil {
				return failed(fmt.Errorf("stability %s: %w", set.Name, err))
			}
			rep.stability = append(rep.stability, r)
		}
	}
	if cfg.sections["tls"] {
		if rep.tls, err = runTLS(e, cfg.tls); err != nil {
			return failed(err)
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
