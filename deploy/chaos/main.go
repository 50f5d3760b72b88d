// Command chaos is metasrv's chaos suite: it drives the Compose cluster of
// deploy/compose under its own project name and ports, injects faults
// (docker kill, docker pause, docker network disconnect, rolling restarts)
// while concurrent clients toggle and read the maintenance flag through
// every node, and checks these invariants: no automatic move during
// maintenance (from the event log, read continuously by raft index), a
// linearizable flag (porcupine), no acknowledged write lost, replicas that
// converge, routes with one owner served by it. The cluster runs with TLS
// on, as `make up` does (mutual TLS between members, HTTPS with client
// certificates); the suite talks HTTPS with the operator's certificate.
//
//	make chaos                    # builds the images, then go run ./deploy/chaos
//	go run ./deploy/chaos -run partition,freeze
//
// It exits 0 with SKIPPED when no Docker Engine answers.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"
)

type config struct {
	project      string
	composeFile  string
	out          string
	only         string
	clients      int
	maxOps       int
	opTimeout    time.Duration
	checkTimeout time.Duration
	scenarioMax  time.Duration
	portBase     int
	keep         bool
	checkOnly    bool
}

func main() {
	os.Exit(run())
}

func run() int {
	var cfg config
	flag.StringVar(&cfg.project, "project", "metasrv-chaos", "Compose project name (never the `make up` default, metasrv)")
	flag.StringVar(&cfg.composeFile, "compose-file", "deploy/compose/docker-compose.yml", "the Compose file")
	flag.StringVar(&cfg.out, "out", "chaos-results", "where a failing run writes its history and logs (a timestamped folder inside)")
	flag.StringVar(&cfg.only, "run", "", "comma-separated scenario names or parts of them (default: all)")
	flag.IntVar(&cfg.clients, "clients", 4, "concurrent clients")
	flag.IntVar(&cfg.maxOps, "max-ops", 3000, "bound on the recorded history per scenario")
	flag.DurationVar(&cfg.opTimeout, "op-timeout", 7*time.Second, "per-request timeout of the clients")
	flag.DurationVar(&cfg.checkTimeout, "check-timeout", 60*time.Second, "porcupine's time limit per scenario (a timeout fails the scenario)")
	flag.DurationVar(&cfg.scenarioMax, "scenario-timeout", 4*time.Minute, "bound on one scenario")
	flag.IntVar(&cfg.portBase, "port-base", 23002, "first published metasrv port (then +100, +200); datanodes at port-base+999..1001")
	flag.BoolVar(&cfg.keep, "keep-artifacts", false, "write the history, events and logs of passing scenarios too")
	flag.BoolVar(&cfg.checkOnly, "check-hardening", false, "only check the running project's containers (-project; metasrv is `make up`'s): "+
		"read-only root, no capabilities, no-new-privileges, user 65532, loopback ports, no secret in argv or environment")
	flag.Parse()
	if cfg.checkOnly {
		return checkOnly(cfg.project)
	}
	if cfg.project == "metasrv" {
		fmt.Fprintln(os.Stderr, "chaos: -project metasrv is the `make up` project; pick another name")
		return 2
	}

	runStart := time.Now()
	logf := func(format string, args ...any) {
		fmt.Printf("%7.1fs %s\n", time.Since(runStart).Seconds(), fmt.Sprintf(format, args...))
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := dockerAvailable(ctx); err != nil {
		fmt.Printf("chaos: SKIPPED: no Docker Engine available (%v).\n", err)
		fmt.Println("chaos: the local-process fallback (network namespaces/iptables) is not implemented yet, so nothing ran.")
		return 0
	}
	release, err := lockProject(cfg.project)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
		return 1
	}
	defer release()
	composeCmd, err := detectCompose(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
		return 1
	}

	metas := []node{
		{Service: "metasrv1", ID: "n1", Port: cfg.portBase},
		{Service: "metasrv2", ID: "n2", Port: cfg.portBase + 100},
		{Service: "metasrv3", ID: "n3", Port: cfg.portBase + 200},
	}
	var datanodes []node
	for i := 1; i <= 3; i++ {
		datanodes = append(datanodes, node{Service: fmt.Sprintf("datanode%d", i), ID: fmt.Sprint(i), Port: cfg.portBase + 998 + i})
	}
	env := []string{
		// Published on loopback only, on ports of its own.
		"METASRV_LOG_LEVEL=debug",
		"METASRV_HEARTBEAT_INTERVAL=500ms",
		"METASRV_ACCEPTABLE_HEARTBEAT_PAUSE=1s",
		"METASRV_FIRST_HEARTBEAT_ESTIMATE=500ms",
		"METASRV_FAILOVER_TICK=200ms",
		"METASRV_BALANCER_INTERVAL=1s",
		"METASRV_BALANCER_COOLDOWN=0s",
	}
	for i, n := range metas {
		env = append(env, fmt.Sprintf("METASRV%d_PORT=127.0.0.1:%d", i+1, n.Port),
			fmt.Sprintf("METASRV%d_HTTP_PORT=127.0.0.1:%d", i+1, n.Port+1))
	}
	for i, n := range datanodes {
		env = append(env, fmt.Sprintf("DATANODE%d_PORT=127.0.0.1:%d", i+1, n.Port))
	}
	compose := &Compose{cmd: composeCmd, project: cfg.project, file: cfg.composeFile, env: env, logf: logf}

	// Cleanup: whatever happens, the project's containers, network and
	// volumes go. A signal cancels the run (which then cleans up); a second
	// one cleans up at once and exits.
	var cleanOnce sync.Once
	cleanErr := error(nil)
	cleanup := func() {
		cleanOnce.Do(func() {
			logf("cleanup: removing project %s (containers, network, volumes)", cfg.project)
			cleanErr = compose.Down()
			if cleanErr != nil {
				logf("cleanup FAILED: %v", cleanErr)
			}
		})
	}
	defer cleanup()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	var interrupted atomic.Bool
	go func() {
		s := <-sigs
		interrupted.Store(true)
		logf("%s: stopping the run; cleaning up", s)
		cancel()
		<-sigs
		logf("second signal: cleaning up now")
		cleanup()
		os.Exit(130)
	}()

	logf("chaos: compose %q, project %s, metasrv ports %d/%d/%d, datanodes %d-%d", strings.Join(composeCmd, " "), cfg.project,
		metas[0].Port, metas[1].Port, metas[2].Port, datanodes[0].Port, datanodes[2].Port)
	logf("removing what an earlier run of project %s left behind", cfg.project)
	if err := compose.Down(); err != nil {
		fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
		return 1
	}
	for _, n := range append(append([]node{}, metas...), datanodes...) {
		if err := portFree(n.Port); err != nil {
			fmt.Fprintf(os.Stderr, "chaos: port %d (for %s) is taken: %v; pick others with -port-base\n", n.Port, n.Service, err)
			return 1
		}
	}

	resultsDir := filepath.Join(cfg.out, time.Now().Format("20060102-150405"))
	var results []result
	for _, sc := range scenarios() {
		if !selected(cfg.only, sc.name) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		results = append(results, runScenario(ctx, cfg, compose, metas, datanodes, sc, resultsDir, logf))
	}
	cleanup()

	printTable(os.Stdout, results, time.Since(runStart))
	failed := cleanErr != nil || interrupted.Load() || len(results) == 0
	for _, res := range results {
		if !res.passed() {
			failed = true
		}
	}
	if dirExists(resultsDir) {
		fmt.Printf("\nhistories, event logs and container logs: %s\n", resultsDir)
	}
	if interrupted.Load() {
		fmt.Println("chaos: interrupted")
	}
	passed := 0
	for _, res := range results {
		if res.passed() {
			passed++
		}
	}
	verdict, code := "PASS", 0
	if failed {
		verdict, code = "FAIL", 1
	}
	fmt.Printf("chaos: %s\n", verdict)
	fmt.Printf("chaos: %d passed, %d failed\n", passed, len(results)-passed)
	return code
}

// checkOnly runs the hardening check (hardening.go) on a project that is
// already up, `make up`'s included; it changes nothing.
func checkOnly(project string) int {
	ctx := context.Background()
	if err := dockerAvailable(ctx); err != nil {
		fmt.Printf("chaos: SKIPPED: no Docker Engine available (%v).\n", err)
		return 0
	}
	summary, err := checkHardening(ctx, &Compose{project: project})
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: project %s: %v\n", project, err)
		return 1
	}
	fmt.Printf("chaos: project %s: %s\n", project, summary)
	return 0
}

func selected(only, name string) bool {
	if only == "" {
		return true
	}
	for _, part := range strings.Split(only, ",") {
		if part = strings.TrimSpace(part); part != "" && strings.Contains(name, part) {
			return true
		}
	}
	return false
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// runScenario runs one scenario on a fresh cluster and returns its row.
func runScenario(parent context.Context, cfg config, compose *Compose, metas, datanodes []node, sc scenario, resultsDir string,
	logf func(string, ...any)) result {
	ctx, cancel := context.WithTimeout(parent, cfg.scenarioMax)
	defer cancel()
	logf("scenario %s: %s", sc.name, sc.title)
	cl := newCluster(compose, metas, datanodes, logf)
	r := &Run{sc: sc, cfg: cfg, compose: compose, cl: cl, logf: logf, started: time.Now()}
	r.rec = newRecorder(cfg.maxOps)
	r.client = r.rec.NewClient()
	r.wl = &Workload{cl: cl, rec: r.rec, clients: cfg.clients, opTimeout: cfg.opTimeout, maxOps: 2000, maxTime: cfg.scenarioMax}
	r.ev = newEventWatcher(cl)
	r.sm = newServingMonitor(cl)

	if err := r.setup(ctx); err != nil {
		r.check("cluster setup", false, "%v", err)
	} else {
		r.step("cluster up (%s)", time.Since(r.started).Round(time.Millisecond))
		r.ev.Start(ctx)
		r.sm.Start(ctx, r.started)
		r.wl.Start(ctx, sc.mode)
		err := sc.run(ctx, r)
		r.wl.Stop()
		r.sm.Stop()
		if parent.Err() != nil {
			// Interrupted: no verdict, no artifacts; the caller cleans up.
			r.ev.Stop()
			logf("  scenario %s interrupted", sc.name)
			ok, failed, unknown := r.rec.Counts()
			return result{name: sc.name, faults: r.faults, ok: ok, failed: failed, unknown: unknown, checks: r.checks,
				took: time.Since(r.started), interrupted: true}
		}
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		r.check("scenario steps completed", err == nil, "%s", orDefault(errString(err), "every step ran"))
		// Bring every metasrv node back for the final checks.
		for _, n := range metas {
			if !cl.isDown(n.Service) {
				continue
			}
			if st, _ := compose.State(context.Background(), n.Service); st == "paused" {
				_ = r.unpause(ctx, n.Service)
			} else {
				_ = r.startSvc(ctx, n.Service)
			}
			if _, err := cl.waitReady(ctx, n, rejoinBound); err != nil {
				r.check("every metasrv node back for the final checks", false, "%v", err)
			}
		}
		if ctx.Err() == nil {
			r.finalChecks(ctx)
		}
		r.ev.Stop()
	}
	r.took = time.Since(r.started)
	ok, failed, unknown := r.rec.Counts()
	res := result{name: sc.name, faults: r.faults, ok: ok, failed: failed, unknown: unknown, checks: r.checks, took: r.took}
	if !res.passed() || cfg.keep {
		dir := filepath.Join(resultsDir, sc.name)
		r.saveArtifacts(context.Background(), dir)
		res.artifact = dir
	}
	if !res.passed() {
		logf("  scenario %s FAILED; history and logs in %s", sc.name, res.artifact)
	} else {
		logf("  scenario %s passed (%s)", sc.name, r.took.Round(time.Second))
	}
	return res
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// printTable prints one row per scenario, then the failed checks.
func printTable(out *os.File, results []result, total time.Duration) {
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tFAULTS INJECTED\tOPERATIONS ok/failed/unknown\tINVARIANT CHECKS\tTIME\tRESULT")
	for _, res := range results {
		passed := 0
		for _, c := range res.checks {
			if c.OK {
				passed++
			}
		}
		verdict := "PASS"
		switch {
		case res.interrupted:
			verdict = "INTERRUPTED"
		case !res.passed():
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d/%d\t%d/%d passed\t%s\t%s\n", res.name, summarizeFaults(res.faults), res.ok, res.failed, res.unknown,
			passed, len(res.checks), res.took.Round(time.Second), verdict)
	}
	tw.Flush()
	fmt.Fprintf(out, "total %s\n", total.Round(time.Second))
	for _, res := range results {
		for _, c := range res.checks {
			if !c.OK {
				fmt.Fprintf(out, "  FAIL %s: %s: %s\n", res.name, c.Name, c.Detail)
			}
		}
	}
}

// summarizeFaults counts faults by kind: "kill×2 pause×1".
func summarizeFaults(faults []string) string {
	var order []string
	counts := map[string]int{}
	for _, f := range faults {
		kind := strings.Fields(f)
		k := f
		switch {
		case len(kind) >= 2 && kind[0] == "docker":
			k = kind[1]
		case len(kind) >= 2 && kind[0] == "network":
			k = "partition"
		case len(kind) >= 2 && kind[0] == "start":
			k = "add-datanode"
		}
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%s×%d", k, counts[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}
