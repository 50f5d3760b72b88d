package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/metasrv/metasrv/server/wire"
)

// check is one invariant or expectation checked by a scenario.
type check struct {
	Name   string
	OK     bool
	Detail string
}

// scenario is one chaos scenario on a fresh cluster.
type scenario struct {
	name  string
	title string
	// start lists the services started at setup; nil starts every one.
	start []string
	// regions is the size of the table created at setup (0: none).
	regions int
	mode    mode // the clients' initial mode
	run     func(ctx context.Context, r *Run) error
}

// Run is one scenario's execution: the cluster, the clients, the event
// watcher, the faults injected and the checks made.
type Run struct {
	sc      scenario
	cfg     config
	compose *Compose
	cl      *Cluster
	rec     *Recorder
	wl      *Workload
	ev      *EventWatcher
	sm      *ServingMonitor
	logf    func(format string, args ...any)

	faults []string
	checks []check
	// killedDN lists the datanodes the scenario took down: the only ones
	// whose regions may fail over.
	killedDN map[string]bool
	client   int // the scenario's own client id in the history
	started  time.Time
	took     time.Duration
	lin      *linearizability
	artifact string // where a failing run's files went
}

// result is one row of the final table.
type result struct {
	name        string
	faults      []string
	ok          int
	failed      int
	unknown     int
	checks      []check
	took        time.Duration
	artifact    string
	interrupted bool
}

func (res result) passed() bool {
	if len(res.checks) == 0 || res.interrupted {
		return false
	}
	for _, c := range res.checks {
		if !c.OK {
			return false
		}
	}
	return true
}

func (r *Run) fault(format string, args ...any) {
	f := fmt.Sprintf(format, args...)
	r.faults = append(r.faults, f)
	r.logf("  fault: %s", f)
}

func (r *Run) check(name string, ok bool, format string, args ...any) bool {
	c := check{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)}
	r.checks = append(r.checks, c)
	mark := "ok  "
	if !ok {
		mark = "FAIL"
	}
	r.logf("  [%s] %s: %s", mark, name, c.Detail)
	return ok
}

func (r *Run) step(format string, args ...any) { r.logf("  %s", fmt.Sprintf(format, args...)) }

// kill, stop, start, pause and unpause change a container and the
// cluster's idea of what is serving.
func (r *Run) kill(ctx context.Context, service, role string) error {
	r.cl.setDown(service, "killed")
	if strings.HasPrefix(service, "datanode") {
		if r.killedDN == nil {
			r.killedDN = map[string]bool{}
		}
		r.killedDN[strings.TrimPrefix(service, "datanode")] = true
	}
	r.fault("docker kill %s%s", service, role)
	return r.compose.Kill(ctx, service)
}

func (r *Run) stop(ctx context.Context, service, role string) error {
	r.cl.setDown(service, "stopped")
	r.fault("docker stop %s%s", service, role)
	return r.compose.Stop(ctx, service)
}

func (r *Run) startSvc(ctx context.Context, service string) error {
	err := r.compose.Start(ctx, service)
	if err == nil {
		r.cl.setDown(service, "")
	}
	r.step("docker start %s", service)
	return err
}

func (r *Run) pause(ctx context.Context, service, role string) error {
	r.cl.setDown(service, "paused")
	r.fault("docker pause %s%s", service, role)
	return r.compose.Pause(ctx, service)
}

func (r *Run) unpause(ctx context.Context, service string) error {
	err := r.compose.Unpause(ctx, service)
	if err == nil {
		r.cl.setDown(service, "")
	}
	r.step("docker unpause %s", service)
	return err
}

func (r *Run) sleep(ctx context.Context, d time.Duration) { sleep(ctx, d) }

// setMaintenance is the scenario's own write, retried until it is answered
// 200. Every attempt is in the history.
func (r *Run) setMaintenance(ctx context.Context, on bool) error {
	start := time.Now()
	const bound = 30 * time.Second
	var last httpResult
	for time.Since(start) < bound && ctx.Err() == nil {
		n := r.target(ctx)
		oc, v, res := maintenanceOp(ctx, r.cl, r.cl.client, r.rec, r.client, hostPort(n.Port), n.Service+"(scenario)",
			regInput{Write: true, Value: on}, 8*time.Second)
		last = res
		if oc == outcomeOK {
			if v != on {
				r.check("write answer echoes the value", false, "set %t via %s answered enabled=%t", on, n.Service, v)
			}
			r.step("maintenance set to %t via %s (%s)", on, n.Service, time.Since(start).Round(time.Millisecond))
			return nil
		}
		if oc == outcomeUnknown {
			r.client = r.rec.NewClient()
		}
		sleep(ctx, 200*time.Millisecond)
	}
	return fmt.Errorf("setting maintenance to %t: no 200 within %s: last answer %s", on, bound, last)
}

// target is the node the scenario sends its own requests to: the leader
// if one is known, else any up node.
func (r *Run) target(ctx context.Context) node {
	if n, _, err := r.cl.leader(ctx); err == nil {
		return n
	}
	up := r.cl.upMetas()
	if len(up) == 0 {
		return r.cl.metas[0]
	}
	return up[rand.IntN(len(up))]
}

// readFlag is a recorded linearizable read through one node, retried
// until it is answered 200.
func (r *Run) readFlag(ctx context.Context, n node, bound time.Duration) (bool, error) {
	start := time.Now()
	var last httpResult
	for time.Since(start) < bound && ctx.Err() == nil {
		oc, v, res := maintenanceOp(ctx, r.cl, r.cl.client, r.rec, r.client, hostPort(n.Port), n.Service+"(scenario)",
			regInput{}, 8*time.Second)
		if oc == outcomeOK {
			return v, nil
		}
		last = res
		sleep(ctx, 200*time.Millisecond)
	}
	return false, fmt.Errorf("read via %s: no 200 within %s: %s", n.Service, bound, last)
}

// flagEverywhere reads the flag through every up metasrv node and checks
// that it is want everywhere.
func (r *Run) flagEverywhere(ctx context.Context, name string, want bool) bool {
	var got []string
	ok := true
	for _, n := range r.cl.upMetas() {
		v, err := r.readFlag(ctx, n, 15*time.Second)
		switch {
		case err != nil:
			ok = false
			got = append(got, err.Error())
		default:
			ok = ok && v == want
			got = append(got, fmt.Sprintf("%s=%t", n.Service, v))
		}
	}
	return r.check(name, ok && len(got) > 0, "want %t: %s", want, strings.Join(got, ", "))
}

// waitFollows waits until a node that was cut off or frozen follows a
// leader other than itself and is ready.
func (r *Run) waitFollows(ctx context.Context, n node, bound time.Duration) (wire.RaftStatus, time.Duration, error) {
	start := time.Now()
	var st wire.RaftStatus
	var err error
	for time.Since(start) < bound && ctx.Err() == nil {
		st, err = r.cl.raft(ctx, n)
		if err == nil && st.State == "follower" && st.LeaderID != "" && st.LeaderID != n.ID && r.cl.ready(ctx, n) {
			return st, time.Since(start), nil
		}
		sleep(ctx, 100*time.Millisecond)
	}
	return st, time.Since(start), fmt.Errorf("%s does not follow a leader within %s (last: %+v, %v)", n.Service, bound, st, err)
}

// setup brings up a fresh cluster for the scenario: what an earlier run
// left is removed, then the project is created, its certificates issued
// (the one-shot pki) and the services started.
func (r *Run) setup(ctx context.Context) error {
	if err := r.compose.Down(); err != nil {
		return err
	}
	if err := r.compose.Create(ctx, pkiService); err != nil {
		return err
	}
	tc, err := issueCertificates(ctx, r.compose)
	if err != nil {
		return fmt.Errorf("certificates: %v", err)
	}
	r.cl.useTLS(tc)
	if err := r.compose.Create(ctx); err != nil {
		return err
	}
	start := r.sc.start
	if start == nil {
		for _, n := range append(append([]node{}, r.cl.metas...), r.cl.datanodes...) {
			start = append(start, n.Service)
		}
	}
	started := map[string]bool{}
	for _, s := range start {
		started[s] = true
	}
	for _, n := range append(append([]node{}, r.cl.metas...), r.cl.datanodes...) {
		if !started[n.Service] {
			r.cl.setDown(n.Service, "not started")
		}
	}
	for _, s := range start {
		if err := r.compose.Start(ctx, s); err != nil {
			return err
		}
	}
	for _, n := range r.cl.upMetas() {
		if _, err := r.cl.waitReady(ctx, n, 60*time.Second); err != nil {
			return err
		}
	}
	if _, _, err := r.cl.waitLeader(ctx, "", 30*time.Second); err != nil {
		return err
	}
	if err := r.cl.checkTLS(ctx); err != nil {
		return err
	}
	summary, err := checkHardening(ctx, r.compose)
	if err != nil {
		return err
	}
	r.logf("  %s", summary)
	// Every started datanode registered and alive.
	want := len(r.cl.upDatanodes())
	deadline := time.Now().Add(30 * time.Second)
	for {
		views, err := r.cl.datanodeViews(ctx)
		alive := 0
		for _, v := range views {
			if v.Status == "alive" {
				alive++
			}
		}
		if err == nil && alive == want {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("want %d datanodes alive within 30s: %d alive (%v)", want, alive, err)
		}
		sleep(ctx, 200*time.Millisecond)
	}
	if r.sc.regions > 0 {
		if err := r.createTable(ctx, "chaos", r.sc.regions); err != nil {
			return err
		}
		if err := r.waitServing(ctx, 30*time.Second); err != nil {
			return fmt.Errorf("after creating the table: %w", err)
		}
	}
	return nil
}

func (r *Run) createTable(ctx context.Context, name string, regions int) error {
	body := []byte(fmt.Sprintf(`{"name":%q,"regions":%d}`, name, regions))
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := r.target(ctx)
		res := r.cl.post(ctx, n, "/admin/tables", body, 10*time.Second)
		if res.ok() {
			r.step("table %s created with %d regions", name, regions)
			return nil
		}
		if res.Status == 409 { // an earlier attempt with an unknown outcome did it
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("create table: %s", res)
		}
		sleep(ctx, 300*time.Millisecond)
	}
}

// servingProblems compares what the up datanodes serve with the routes: a
// region whose owner is up must be served by it, and no region may be
// served by a datanode that does not own it.
func (r *Run) servingProblems(ctx context.Context) ([]string, error) {
	routes, err := r.cl.regions(ctx)
	if err != nil {
		return nil, err
	}
	servedBy := map[uint64][]string{}
	upDN := map[string]bool{}
	for _, d := range r.cl.upDatanodes() {
		upDN[d.ID] = true
		ids, err := r.cl.served(ctx, d)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			servedBy[id] = append(servedBy[id], d.ID)
		}
	}
	var problems []string
	for _, reg := range routes {
		owner := strconv.FormatUint(reg.Datanode, 10)
		by := servedBy[reg.ID]
		switch {
		case len(by) > 1:
			problems = append(problems, fmt.Sprintf("region %d served by %v", reg.ID, by))
		case len(by) == 1 && by[0] != owner:
			problems = append(problems, fmt.Sprintf("region %d served by %s but owned by %s", reg.ID, by[0], owner))
		case len(by) == 0 && upDN[owner]:
			problems = append(problems, fmt.Sprintf("region %d not served by its owner %s", reg.ID, owner))
		}
		delete(servedBy, reg.ID)
	}
	for id, by := range servedBy {
		problems = append(problems, fmt.Sprintf("region %d has no route but is served by %v", id, by))
	}
	sort.Strings(problems)
	return problems, nil
}

func (r *Run) waitServing(ctx context.Context, bound time.Duration) error {
	start := time.Now()
	var problems []string
	var err error
	for time.Since(start) < bound && ctx.Err() == nil {
		problems, err = r.servingProblems(ctx)
		if err == nil && len(problems) == 0 {
			return nil
		}
		sleep(ctx, 250*time.Millisecond)
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("datanodes do not serve their routes within %s: %s", bound, strings.Join(first(problems, 5), "; "))
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("... %d more", len(s)-n))
	}
	return s
}

// finalChecks runs after the clients stopped and every metasrv node is
// back: final reads, replica convergence, the event log, routes, serving,
// and linearizability.
func (r *Run) finalChecks(ctx context.Context) {
	// Final linearizable reads through every node close the history: an
	// acknowledged write that was lost shows up against them.
	for _, n := range r.cl.upMetas() {
		if _, err := r.readFlag(ctx, n, 20*time.Second); err != nil {
			r.check("final read through "+n.Service, false, "%v", err)
		}
	}
	r.checkConvergence(ctx)

	if err := r.ev.Sync(ctx, 20*time.Second); err != nil {
		r.check("event log readable", false, "%v", err)
	}
	events := r.ev.Events()
	missed := r.ev.Missed()
	r.check("event stream complete (first_index)", missed == "", "%d events read by raft index%s", len(events), suffix(missed))
	bad := autoMovesDuringMaintenance(events)
	r.check("no automatic move committed during maintenance", len(bad) == 0, "%d automatic moves in the log, %d while maintenance was on%s",
		countAuto(events), len(bad), suffix(strings.Join(first(bad, 5), "; ")))

	var spurious []string
	for _, e := range events {
		if e.Type == "region_moved" && e.Fields["cause"] == "failover" && !r.killedDN[e.Fields["from"]] {
			spurious = append(spurious, e.String())
		}
	}
	r.check("failover only from datanodes that were taken down", len(spurious) == 0, "%d failover moves from live datanodes%s",
		len(spurious), suffix(strings.Join(first(spurious, 5), "; ")))

	// Every region has exactly one owner, a registered datanode.
	routes, err := r.cl.regions(ctx)
	views, err2 := r.cl.datanodeViews(ctx)
	if err == nil && err2 == nil {
		known := map[uint64]bool{}
		for _, v := range views {
			known[v.ID] = true
		}
		seen := map[uint64]bool{}
		var problems []string
		for _, reg := range routes {
			if seen[reg.ID] {
				problems = append(problems, fmt.Sprintf("region %d listed twice", reg.ID))
			}
			seen[reg.ID] = true
			if !known[reg.Datanode] {
				problems = append(problems, fmt.Sprintf("region %d owned by unknown datanode %d", reg.ID, reg.Datanode))
			}
		}
		r.check("every region has exactly one registered owner", len(problems) == 0, "%d regions%s", len(routes), suffix(strings.Join(first(problems, 5), "; ")))
	} else {
		r.check("every region has exactly one registered owner", false, "%v %v", err, err2)
	}
	rounds, slow, doubles := r.sm.Result()
	r.check("no region served by two datanodes at once", len(doubles) == 0 && rounds > 0,
		"%d rounds of every live datanode's /regions within %s judged (%d slower ones not)%s", rounds, r.sm.maxSpan, slow,
		suffix(strings.Join(first(doubles, 5), "; ")))
	if err := r.waitServing(ctx, 20*time.Second); err != nil {
		r.check("datanodes serve exactly their routes", false, "%v", err)
	} else {
		r.check("datanodes serve exactly their routes", true, "%d live datanodes", len(r.cl.upDatanodes()))
	}

	r.check("write answers echo the value written", r.wl.mismatches.Load() == 0, "%d mismatches", r.wl.mismatches.Load())

	lin := r.rec.Check(r.cfg.checkTimeout)
	r.lin = &lin
	detail := fmt.Sprintf("%s on %d operations in %s", lin.Result, lin.Ops, lin.Took.Round(time.Millisecond))
	if lin.Dropped > 0 {
		detail += fmt.Sprintf(" (%d past the history bound not recorded)", lin.Dropped)
	}
	if lin.Result == porcupine.Unknown {
		detail += ": the checker timed out, which counts as a failure"
	}
	r.check("maintenance flag linearizable (porcupine)", lin.Result == porcupine.Ok, "%s", detail)
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func countAuto(events []event) int {
	n := 0
	for _, e := range events {
		if automaticMove(e) {
			n++
		}
	}
	return n
}

// checkConvergence waits until every metasrv node has applied the same
// index with the same maintenance flag and routes, then compares the nodes'
// event logs with each other and with the stream the watcher read.
func (r *Run) checkConvergence(ctx context.Context) {
	type view struct {
		applied uint64
		flag    bool
		routes  string
	}
	start := time.Now()
	var last []string
	converged := false
	for time.Since(start) < 30*time.Second && ctx.Err() == nil {
		var views []view
		last = nil
		okAll := true
		for _, n := range r.cl.upMetas() {
			st, err := r.cl.raft(ctx, n)
			var m struct {
				Enabled bool `json:"enabled"`
			}
			err2 := r.cl.getJSON(ctx, n, "/admin/maintenance?stale", &m)
			var rs []wire.Route
			err3 := r.cl.getJSON(ctx, n, "/admin/regions?stale", &rs)
			if err := errors.Join(err, err2, err3); err != nil {
				okAll = false
				last = append(last, err.Error())
				continue
			}
			sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
			views = append(views, view{st.AppliedIndex, m.Enabled, routesKey(rs)})
			last = append(last, fmt.Sprintf("%s applied=%d enabled=%t", n.Service, st.AppliedIndex, m.Enabled))
		}
		for _, v := range views[min(1, len(views)):] {
			okAll = okAll && v == views[0]
		}
		if okAll && len(views) == len(r.cl.metas) {
			converged = true
			break
		}
		sleep(ctx, 250*time.Millisecond)
	}
	r.check("replicas converge (applied index, flag, routes)", converged, "%s", strings.Join(last, ", "))

	// Event logs: identical on every node, and the stream read through
	// the leader is part of them (nothing it saw was later lost).
	logs := map[string][]event{}
	for _, n := range r.cl.upMetas() {
		var page eventsPage
		if err := r.cl.getJSON(ctx, n, "/admin/events?stale&limit="+strconv.Itoa(eventsPageLimit), &page); err != nil {
			r.check("event logs identical on every node", false, "%v", err)
			return
		}
		logs[n.Service] = page.Events
	}
	if err := r.ev.Sync(ctx, 10*time.Second); err == nil {
		logs["stream"] = r.ev.Events()
	}
	var diffs []string
	var names []string
	for name := range logs {
		names = append(names, name)
	}
	sort.Strings(names)
	ref := names[0]
	for _, name := range names[1:] {
		if d := diffEvents(logs[ref], logs[name]); d != "" {
			diffs = append(diffs, ref+" vs "+name+": "+d)
		}
	}
	r.check("event logs identical on every node and in the stream", len(diffs) == 0, "%d logs, %d events on %s%s",
		len(logs), len(logs[ref]), ref, suffix(strings.Join(diffs, "; ")))
}

// diffEvents compares two event logs over the indexes both cover.
func diffEvents(a, b []event) string {
	upto := func(evs []event) uint64 {
		if len(evs) == 0 {
			return 0
		}
		return evs[len(evs)-1].Index
	}
	limit := min(upto(a), upto(b))
	cut := func(evs []event) []event {
		var out []event
		for _, e := range evs {
			if e.Index <= limit {
				out = append(out, e)
			}
		}
		return out
	}
	a, b = cut(a), cut(b)
	for i := 0; i < max(len(a), len(b)); i++ {
		switch {
		case i >= len(a):
			return fmt.Sprintf("extra %s", b[i])
		case i >= len(b):
			return fmt.Sprintf("missing %s", a[i])
		}
		ja, _ := json.Marshal(a[i])
		jb, _ := json.Marshal(b[i])
		if string(ja) != string(jb) {
			return fmt.Sprintf("differ at position %d: %s / %s", i, ja, jb)
		}
	}
	return ""
}

// saveArtifacts writes what a failing scenario leaves for a person: the
// checks, the history (HTML visualization and text), the event log and
// every container's logs.
func (r *Run) saveArtifacts(ctx context.Context, dir string) {
	_ = os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s: %s\n\nfaults:\n", r.sc.name, r.sc.title)
	for _, f := range r.faults {
		fmt.Fprintf(&b, "  %s\n", f)
	}
	b.WriteString("\nchecks:\n")
	for _, c := range r.checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  [%s] %s: %s\n", mark, c.Name, c.Detail)
	}
	_ = os.WriteFile(filepath.Join(dir, "checks.txt"), []byte(b.String()), 0o644)
	lin := r.lin
	if lin == nil && r.rec != nil {
		// The final checks did not run: check what was recorded, briefly,
		// for the visualization.
		l := r.rec.Check(10 * time.Second)
		lin = &l
	}
	if lin != nil {
		if err := lin.WriteFiles(dir); err != nil {
			r.logf("  writing the history: %v", err)
		}
	}
	if r.ev != nil {
		var eb strings.Builder
		for _, e := range r.ev.Events() {
			eb.WriteString(e.String() + "\n")
		}
		_ = os.WriteFile(filepath.Join(dir, "events.txt"), []byte(eb.String()), 0o644)
	}
	names, err := r.compose.containers(ctx)
	if err != nil {
		r.logf("  listing containers: %v", err)
	}
	for _, name := range names {
		_ = os.WriteFile(filepath.Join(dir, "logs", name+".log"), r.compose.Logs(ctx, name), 0o644)
	}
	r.artifact = dir
}
