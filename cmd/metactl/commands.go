package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/metasrv/metasrv/server/wire"
)

// parseID reads a positive integer id.
func parseID(s, what string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, usagef("%s id %q: want a positive integer", what, s)
	}
	return id, nil
}

// ---- status

type memberRow struct {
	m     wire.ClusterMember
	raft  *wire.RaftStatus
	raw   json.RawMessage
	ready *bool
	err   error
}

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{Use: "status", Short: "Members, maintenance, datanodes and region spread", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.status(cmd.Context()) }}
}

func (a *app) status(ctx context.Context) error {
	var cl wire.Cluster
	clusterBody, err := a.cl.getJSON(ctx, "/admin/cluster", nil, &cl)
	if err != nil {
		return err
	}
	rows := a.probeMembers(ctx, cl.Members)
	var errs []string
	var m wire.Maintenance
	mBody, err := a.cl.getJSON(ctx, "/admin/maintenance/status", url.Values{"verbose": {"true"}}, &m)
	if err != nil {
		errs = append(errs, "maintenance: "+err.Error())
	}
	var dns []wire.Datanode
	dBody, err := a.cl.getJSON(ctx, "/admin/datanodes", nil, &dns)
	if err != nil {
		errs = append(errs, "datanodes: "+err.Error())
	}
	var routes []wire.Route
	rBody, err := a.cl.getJSON(ctx, "/admin/regions", nil, &routes)
	if err != nil {
		errs = append(errs, "regions: "+err.Error())
	}

	if a.output == "json" {
		raft := map[string]json.RawMessage{}
		for _, r := range rows {
			if r.raw != nil {
				raft[r.m.ID] = r.raw
			}
		}
		rb, _ := json.Marshal(raft)
		printObject(a.stdout, map[string][]byte{"cluster": clusterBody, "raft": rb, "maintenance": mBody,
			"datanodes": dBody, "regions": rBody})
	} else {
		w := a.stdout
		fmt.Fprintf(w, "cluster %s, leader %s (%s), seen from %s\n\n", cl.ClusterID, orDash(cl.LeaderID), orDash(cl.LeaderRPCAddr), a.cl.addr)
		t := newTable(w, "MEMBER", "ADDRESS", "ROLE", "TERM", "APPLIED", "VERSION", "READY")
		for _, r := range rows {
			term, applied, ready := "-", "-", "unreachable"
			if r.m.RPCAddr == "" {
				ready = "address unknown"
			}
			if r.raft != nil {
				term, applied = strconv.FormatUint(r.raft.Term, 10), strconv.FormatUint(r.raft.AppliedIndex, 10)
			}
			if r.ready != nil {
				ready = yesNo(*r.ready)
			}
			t.row(r.m.ID, r.m.RPCAddr, role(r), term, applied, r.m.Version, ready)
		}
		t.flush()
		fmt.Fprintln(w)
		if mBody != nil {
			fmt.Fprintln(w, maintenanceLine(m))
			fmt.Fprintln(w)
		}
		if dBody != nil {
			t = newTable(w, "DATANODE", "ADDRESS", "STATUS", "REGIONS", "ADMIN")
			for _, d := range dns {
				t.row(d.ID, d.Addr, d.Status, d.Regions, d.AdminState)
			}
			t.flush()
			if len(dns) == 0 {
				fmt.Fprintln(w, "(no datanodes registered)")
			}
			fmt.Fprintln(w)
		}
		if rBody != nil {
			fmt.Fprintln(w, regionSpread(routes))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// probeMembers asks every member for its raft view and readiness, each
// bounded (a member down shows as unreachable).
func (a *app) probeMembers(ctx context.Context, members []wire.ClusterMember) []memberRow {
	rows := make([]memberRow, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		rows[i].m = m
		if m.RPCAddr == "" {
			continue
		}
		wg.Add(1)
		go func(r *memberRow) {
			defer wg.Done()
			var raw json.RawMessage
			if r.err = a.cl.getFrom(ctx, r.m.RPCAddr, "/admin/raft", &raw); r.err != nil {
				return
			}
			var st wire.RaftStatus
			if json.Unmarshal(raw, &st) == nil {
				r.raft, r.raw = &st, raw
			}
			var rd struct {
				Ready bool `json:"ready"`
			}
			if a.cl.getFrom(ctx, r.m.RPCAddr, "/admin/ready", &rd) == nil {
				r.ready = &rd.Ready
			}
		}(&rows[i])
	}
	wg.Wait()
	sort.Slice(rows, func(i, j int) bool { return rows[i].m.ID < rows[j].m.ID })
	return rows
}

func role(r memberRow) string {
	switch {
	case r.m.Suffrage != "voter":
		return r.m.Suffrage
	case r.raft != nil:
		return r.raft.State
	case r.m.Leader:
		return "leader"
	}
	return "voter"
}

func maintenanceLine(m wire.Maintenance) string {
	if !m.Enabled {
		return fmt.Sprintf("maintenance: off (epoch %d)", m.Epoch)
	}
	reason := m.Reason
	if reason == "" {
		reason = "-"
	}
	return fmt.Sprintf("maintenance: on, by %s, reason %q, since %s, expires %s (epoch %d)",
		orDash(m.By), reason, fmtTime(m.Since), fmtTime(m.ExpiresAt), m.Epoch)
}

func regionSpread(routes []wire.Route) string {
	by := map[uint64]int{}
	inFlight := 0
	tables := map[string]bool{}
	for _, r := range routes {
		by[r.Datanode]++
		tables[r.Table] = true
		if r.InFlight {
			inFlight++
		}
	}
	ids := make([]uint64, 0, len(by))
	for id := range by {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var parts []string
	lo, hi := -1, 0
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%d:%d", id, by[id]))
		if lo < 0 || by[id] < lo {
			lo = by[id]
		}
		hi = max(hi, by[id])
	}
	if len(routes) == 0 {
		return "regions: none"
	}
	return fmt.Sprintf("regions: %d in %d tables, %d in flight; per datanode %s (spread %d)",
		len(routes), len(tables), inFlight, strings.Join(parts, " "), hi-lo)
}

// ---- maintenance

func (a *app) maintenanceCmd() *cobra.Command {
	status := &cobra.Command{Use: "status", Short: "Show the maintenance flag", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.maintenanceStatus(cmd.Context()) }}

	var reason, by string
	var ttl time.Duration
	enable := &cobra.Command{Use: "enable", Short: "Turn maintenance on (failover and balancing stop)", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if cmd.Flags().Changed("reason") {
				q.Set("reason", reason)
			}
			if cmd.Flags().Changed("by") {
				if by == "" {
					return usagef("--by must not be empty")
				}
				q.Set("by", by)
			}
			if cmd.Flags().Changed("ttl") {
				if ttl <= 0 {
					return usagef("--ttl %s: must be positive", ttl)
				}
				q.Set("ttl", ttl.String())
			}
			body, err := a.cl.do(cmd.Context(), http.MethodPost, "/admin/maintenance/enable", q)
			if err != nil {
				return err
			}
			if a.output == "json" {
				printJSON(a.stdout, body)
				return nil
			}
			return a.maintenanceStatus(cmd.Context())
		}}
	enable.Flags().StringVar(&reason, "reason", "", "why (recorded with the flag and in the event log)")
	enable.Flags().StringVar(&by, "by", "", "who (default: the client's address)")
	enable.Flags().DurationVar(&ttl, "ttl", 0, "turn maintenance off by itself after this long (e.g. 2h)")

	var force bool
	disable := &cobra.Command{Use: "disable", Short: "Turn maintenance off if the preflight passes (--force: regardless)", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.maintenanceDisable(cmd.Context(), force) }}
	disable.Flags().BoolVar(&force, "force", false, "disable even if the preflight fails")

	preflight := &cobra.Command{Use: "preflight", Short: "Show whether turning maintenance off now is safe", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, body, err := a.preflight(cmd.Context())
			if err != nil {
				return err
			}
			if a.output == "json" {
				printJSON(a.stdout, body)
			} else {
				a.printPreflight(p)
			}
			if !p.Ready {
				return withCode(exitNotReady, errors.New("preflight: not ready to disable maintenance"))
			}
			return nil
		}}
	return group("maintenance", "Show or change the maintenance flag", status, enable, disable, preflight)
}

func (a *app) maintenanceStatus(ctx context.Context) error {
	var m wire.Maintenance
	body, err := a.cl.getJSON(ctx, "/admin/maintenance/status", url.Values{"verbose": {"true"}}, &m)
	if err != nil {
		return err
	}
	if a.output == "json" {
		printJSON(a.stdout, body)
		return nil
	}
	fmt.Fprintln(a.stdout, maintenanceLine(m))
	return nil
}

func (a *app) preflight(ctx context.Context) (wire.Preflight, []byte, error) {
	var p wire.Preflight
	body, err := a.cl.getJSON(ctx, "/admin/maintenance/preflight", nil, &p)
	return p, body, err
}

func (a *app) printPreflight(p wire.Preflight) {
	t := newTable(a.stdout, "CHECK", "OK", "DETAIL")
	for _, c := range p.Checks {
		t.row(c.Name, yesNo(c.OK), c.Detail)
	}
	t.flush()
	a.printWouldMove(p.WouldMove, p.MoveFrom)
}

func (a *app) printWouldMove(n int, from []wire.PreflightMove) {
	if n == 0 {
		fmt.Fprintln(a.stdout, "turning maintenance off would move no region")
		return
	}
	var parts []string
	for _, m := range from {
		parts = append(parts, fmt.Sprintf("datanode %d (%s): %d", m.Datanode, m.Addr, m.Regions))
	}
	fmt.Fprintf(a.stdout, "turning maintenance off would fail over %d regions at once, from %s\n", n, strings.Join(parts, ", "))
}

func (a *app) maintenanceDisable(ctx context.Context, force bool) error {
	p, pBody, perr := a.preflight(ctx)
	if perr != nil && !force {
		return fmt.Errorf("preflight: %w (use --force to disable without it)", perr)
	}
	if a.output == "table" {
		if perr != nil {
			fmt.Fprintf(a.stderr, "metactl: preflight unavailable: %v; disabling anyway (--force)\n", oneLine(perr.Error()))
		} else {
			a.printPreflight(p)
		}
	}
	q := url.Values{}
	if !force {
		q.Set("require_ready", "true")
	}
	body, err := a.cl.do(ctx, http.MethodPost, "/admin/maintenance/disable", q)
	if a.output == "json" {
		printObject(a.stdout, map[string][]byte{"preflight": pBody, "disable": body})
	}
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == wire.CodePreflightFailed {
		if a.output == "table" {
			var refused struct {
				Checks    []wire.PreflightCheck `json:"checks"`
				WouldMove int                   `json:"would_move"`
				MoveFrom  []wire.PreflightMove  `json:"move_from"`
			}
			if json.Unmarshal(ae.Body, &refused) == nil && len(refused.Checks) > 0 {
				fmt.Fprintln(a.stdout, "\nrefused by the leader; failed checks:")
				for _, c := range refused.Checks {
					fmt.Fprintf(a.stdout, "  %s: %s\n", c.Name, c.Detail)
				}
			}
		}
		return withCode(exitNotReady, fmt.Errorf("%w; maintenance stays on (--force disables anyway)", err))
	}
	if err != nil {
		return err
	}
	if a.output == "table" {
		how := "preflight passed"
		if force {
			how = "forced"
		}
		fmt.Fprintf(a.stdout, "maintenance: off (%s)\n", how)
	}
	return nil
}

// ---- datanodes

func (a *app) datanodeCmd() *cobra.Command {
	list := &cobra.Command{Use: "list", Short: "List datanodes (the leader's view)", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var dns []wire.Datanode
			body, err := a.cl.getJSON(cmd.Context(), "/admin/datanodes", nil, &dns)
			if err != nil {
				return err
			}
			if a.output == "json" {
				printJSON(a.stdout, body)
				return nil
			}
			t := newTable(a.stdout, "ID", "ADDRESS", "STATUS", "REGIONS", "ADMIN", "LAST HEARTBEAT", "LEASE", "FAILOVER")
			for _, d := range dns {
				hb := "-"
				if d.SecondsSinceHeartbeat >= 0 {
					hb = fmt.Sprintf("%.1fs ago", d.SecondsSinceHeartbeat)
				}
				lease := "held"
				if d.LeaseExpired {
					lease = "expired"
				}
				fo := "-"
				switch {
				case d.FailoverBraked:
					fo = "braked"
				case d.FailoverDeferred:
					fo = "deferred"
				}
				t.row(d.ID, d.Addr, d.Status, d.Regions, d.AdminState, hb, lease, fo)
			}
			t.flush()
			return nil
		}}
	state := func(verb, short string) *cobra.Command {
		return &cobra.Command{Use: verb + " ID", Short: short, Args: exactArgs("ID"),
			RunE: func(cmd *cobra.Command, args []string) error {
				id, err := parseID(args[0], "datanode")
				if err != nil {
					return err
				}
				_, err = a.adminState(cmd.Context(), id, verb)
				return err
			}}
	}
	var wait bool
	var timeout time.Duration
	drain := &cobra.Command{Use: "drain ID", Short: "Cordon a datanode and move its regions away", Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0], "datanode")
			if err != nil {
				return err
			}
			if timeout <= 0 {
				return usagef("--timeout %s: must be positive", timeout)
			}
			regions, err := a.adminState(cmd.Context(), id, "drain")
			if err != nil || !wait {
				return err
			}
			return a.waitDrained(cmd.Context(), id, regions, timeout)
		}}
	drain.Flags().BoolVar(&wait, "wait", false, "wait until the datanode owns no region and its lease has run out")
	drain.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "bound on --wait (exit 4 when it runs out)")
	remove := &cobra.Command{Use: "remove ID", Short: "Remove a datanode that owns no regions", Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0], "datanode")
			if err != nil {
				return err
			}
			body, err := a.cl.do(cmd.Context(), http.MethodDelete, fmt.Sprintf("/admin/datanodes/%d", id), nil)
			if err != nil {
				return err
			}
			a.done(body, fmt.Sprintf("datanode %d removed", id))
			return nil
		}}
	return group("datanode", "List datanodes, change their admin state, drain or remove them",
		list, state("cordon", "Take a datanode out of scheduling (it keeps its regions)"),
		state("uncordon", "Put a datanode back into scheduling"), drain, remove)
}

// done prints a write's answer: the body in json, else msg.
func (a *app) done(body []byte, msg string) {
	if a.output == "json" {
		printJSON(a.stdout, body)
	} else {
		fmt.Fprintln(a.stdout, msg)
	}
}

func (a *app) adminState(ctx context.Context, id uint64, verb string) (int, error) {
	body, err := a.cl.do(ctx, http.MethodPost, fmt.Sprintf("/admin/datanodes/%d/%s", id, verb), nil)
	if err != nil {
		return 0, err
	}
	var st struct {
		AdminState string `json:"admin_state"`
		Regions    int    `json:"regions"`
	}
	_ = json.Unmarshal(body, &st)
	a.done(body, fmt.Sprintf("datanode %d: %s (%d regions)", id, st.AdminState, st.Regions))
	return st.Regions, nil
}

// waitDrained waits until datanode id owns no region (GET
// /admin/regions?datanode=ID is empty) and no lease still covers a region
// on it: the leader sees it serve nothing (still_serving false in GET
// /admin/datanodes), or its lease has run out. A running datanode that
// closed its regions is drained; it need not be stopped.
func (a *app) waitDrained(ctx context.Context, id uint64, regions int, timeout time.Duration) error {
	what := fmt.Sprintf("draining datanode %d", id)
	err := a.waitFor(ctx, what, timeout, regions, func(ctx context.Context) (int, string, bool, error) {
		var rs []wire.Route
		if _, err := a.cl.getJSON(ctx, "/admin/regions", url.Values{"datanode": {strconv.FormatUint(id, 10)}}, &rs); err != nil {
			return 0, "", false, err
		}
		d, err := a.datanode(ctx, id)
		if err != nil {
			return 0, "", false, err
		}
		done := len(rs) == 0 && (!d.StillServing || d.LeaseExpired)
		note := "serving nothing"
		if d.StillServing && !d.LeaseExpired {
			note = "still serving under its lease"
		}
		return len(rs), note, done, nil
	})
	if err == nil && a.output == "table" {
		fmt.Fprintf(a.stdout, "datanode %d drained: no region, none served under a lease\n", id)
	}
	return err
}

// ---- regions

func (a *app) regionCmd() *cobra.Command {
	var tableName string
	var onDatanode uint64
	list := &cobra.Command{Use: "list", Short: "List regions and their owners", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if tableName != "" {
				q.Set("table", tableName)
			}
			if onDatanode != 0 {
				q.Set("datanode", strconv.FormatUint(onDatanode, 10))
			}
			var rs []wire.Route
			body, err := a.cl.getJSON(cmd.Context(), "/admin/regions", q, &rs)
			if err != nil {
				return err
			}
			if a.output == "json" {
				printJSON(a.stdout, body)
				return nil
			}
			t := newTable(a.stdout, "REGION", "TABLE", "DATANODE", "VERSION", "IN FLIGHT")
			for _, r := range rs {
				t.row(r.ID, r.Table, r.Datanode, r.Version, yesNo(r.InFlight))
			}
			t.flush()
			return nil
		}}
	list.Flags().StringVar(&tableName, "table", "", "only this table's regions")
	list.Flags().Uint64Var(&onDatanode, "datanode", 0, "only the regions this datanode owns")

	var to, from uint64
	var wait bool
	var timeout time.Duration
	migrate := &cobra.Command{Use: "migrate ID --to N", Short: "Move a region to datanode N (allowed during maintenance)", Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0], "region")
			if err != nil {
				return err
			}
			if to == 0 {
				return usagef("region migrate: --to N (the target datanode id) is required")
			}
			if timeout <= 0 {
				return usagef("--timeout %s: must be positive", timeout)
			}
			q := url.Values{"to": {strconv.FormatUint(to, 10)}}
			if from != 0 {
				q.Set("from", strconv.FormatUint(from, 10))
			}
			body, err := a.cl.do(cmd.Context(), http.MethodPost, fmt.Sprintf("/admin/regions/%d/migrate", id), q)
			if err != nil {
				return err
			}
			a.done(body, fmt.Sprintf("region %d: moving to datanode %d", id, to))
			if !wait {
				return nil
			}
			err = a.waitFor(cmd.Context(), fmt.Sprintf("region %d to datanode %d", id, to), timeout, 1,
				func(ctx context.Context) (int, string, bool, error) {
					var rs []wire.Route
					if _, err := a.cl.getJSON(ctx, "/admin/regions", url.Values{"datanode": {strconv.FormatUint(to, 10)}}, &rs); err != nil {
						return 0, "", false, err
					}
					for _, r := range rs {
						if r.ID == id && !r.InFlight {
							return 0, "", true, nil
						}
						if r.ID == id {
							return 1, "opening on the target", false, nil
						}
					}
					return 1, "not owned by the target", false, nil
				})
			if err == nil && a.output == "table" {
				fmt.Fprintf(a.stdout, "region %d served by datanode %d\n", id, to)
			}
			return err
		}}
	migrate.Flags().Uint64Var(&to, "to", 0, "target datanode id (required)")
	migrate.Flags().Uint64Var(&from, "from", 0, "move only if the region is still on this datanode")
	migrate.Flags().BoolVar(&wait, "wait", false, "wait until the target serves the region")
	migrate.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "bound on --wait (exit 4 when it runs out)")
	return group("region", "List or move regions", list, migrate)
}

// ---- members

func (a *app) memberCmd() *cobra.Command {
	list := &cobra.Command{Use: "list", Short: "List metasrv members (one node's view)", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cl wire.Cluster
			body, err := a.cl.getJSON(cmd.Context(), "/admin/cluster", nil, &cl)
			if err != nil {
				return err
			}
			if a.output == "json" {
				printJSON(a.stdout, body)
				return nil
			}
			t := newTable(a.stdout, "ID", "RAFT ADDRESS", "RPC ADDRESS", "SUFFRAGE", "VERSION", "LEADER", "REACHABLE")
			for _, m := range cl.Members {
				t.row(m.ID, m.RaftAddr, m.RPCAddr, m.Suffrage, m.Version, yesNo(m.Leader), yesNo(m.Reachable))
			}
			t.flush()
			return nil
		}}
	var forceRemove bool
	remove := &cobra.Command{Use: "remove ID", Short: "Remove a member from the raft configuration", Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validMemberID(args[0]); err != nil {
				return err
			}
			var q url.Values
			if forceRemove {
				q = url.Values{"force": {"true"}}
			}
			body, err := a.cl.do(cmd.Context(), http.MethodDelete, "/admin/cluster/members/"+url.PathEscape(args[0]), q)
			if err != nil {
				return err
			}
			a.done(body, fmt.Sprintf("member %s removed", args[0]))
			return nil
		}}
	var raftAddr, rpcAddr string
	var forceAdd bool
	add := &cobra.Command{Use: "add ID --raft-addr HOST:PORT --rpc-addr HOST:PORT", Short: "Add a running node as a voter (its raft listener must be up)", Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validMemberID(args[0]); err != nil {
				return err
			}
			for flag, v := range map[string]string{"--raft-addr": raftAddr, "--rpc-addr": rpcAddr} {
				if err := wire.CheckHostPort(v); err != nil {
					return usagef("%s %q: %v", flag, v, err)
				}
			}
			var q url.Values
			if forceAdd {
				q = url.Values{"force": {"true"}}
			}
			req, _ := json.Marshal(wire.JoinRequest{ID: args[0], RaftAddr: raftAddr, RPCAddr: rpcAddr})
			body, err := a.cl.send(cmd.Context(), http.MethodPost, "/admin/cluster/join", q, req)
			if err != nil {
				return err
			}
			a.done(body, fmt.Sprintf("member %s added (raft %s, rpc %s)", args[0], raftAddr, rpcAddr))
			return nil
		}}
	add.Flags().StringVar(&raftAddr, "raft-addr", "", "the node's raft address (required)")
	add.Flags().StringVar(&rpcAddr, "rpc-addr", "", "the node's API address (required)")
	add.Flags().BoolVar(&forceAdd, "force", false, "add even if fewer reachable voters than a quorum would be left")
	remove.Flags().BoolVar(&forceRemove, "force", false, "remove even if fewer reachable voters than a quorum would be left (409 quorum_at_risk otherwise)")
	var to string
	transfer := &cobra.Command{Use: "transfer-leader", Short: "Move leadership (to --to, or to any up-to-date voter)", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if to != "" {
				if err := validMemberID(to); err != nil {
					return err
				}
				q.Set("to", to)
			}
			body, err := a.cl.do(cmd.Context(), http.MethodPost, "/admin/cluster/transfer-leadership", q)
			if err != nil {
				return err
			}
			var res struct {
				Previous string `json:"previous_leader_id"`
				Leader   string `json:"leader_id"`
			}
			_ = json.Unmarshal(body, &res)
			a.done(body, fmt.Sprintf("leader: %s (was %s)", res.Leader, res.Previous))
			return nil
		}}
	transfer.Flags().StringVar(&to, "to", "", "member id to hand leadership to")
	return group("member", "List, add or remove metasrv members, move leadership", list, add, remove, transfer)
}

func validMemberID(id string) error {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "/=, \t\n") {
		return usagef("member id %q: want 1 to 128 characters without '/', '=', ',' or spaces", id)
	}
	return nil
}

// ---- events

func (a *app) eventsCmd() *cobra.Command {
	var limit, latest int
	var since uint64
	var follow, changesOnly bool
	cmd := &cobra.Command{Use: "events", Short: "Show the change log (oldest first); --follow waits for new events", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 10000 {
				return usagef("--limit %d: want 1 to 10000", limit)
			}
			if latest < 0 || latest > 10000 || (latest > 0 && since > 0) {
				return usagef("--latest %d: want 1 to 10000, without --since", latest)
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if latest > 0 {
				q = url.Values{"latest": {strconv.Itoa(latest)}}
			} else if since > 0 {
				q.Set("since", strconv.FormatUint(since, 10))
			}
			q.Set("watch", strconv.FormatBool(!changesOnly))
			var t *table
			if a.output != "json" {
				t = newTable(a.stdout, "INDEX", "TIME", "TYPE", "BY", "REASON", "DETAIL")
			}
			for {
				var page wire.EventsPage
				body, err := a.cl.getJSON(cmd.Context(), "/admin/events", q, &page)
				if err != nil {
					if follow && cmd.Context().Err() != nil {
						return nil // Ctrl-C
					}
					return err
				}
				if a.output == "json" {
					if !follow || len(page.Events) > 0 {
						printJSON(a.stdout, body)
					}
				} else {
					if since > 0 && page.FirstIndex > since+1 {
						fmt.Fprintf(a.stderr, "metactl: events before index %d were dropped from the log's ring\n", page.FirstIndex)
					}
					for _, e := range page.Events {
						t.row(e.Index, e.Time.UTC().Format(time.RFC3339), e.Type, e.By, e.Reason, eventDetail(e))
					}
					t.flush()
				}
				if !follow {
					return nil
				}
				if n := len(page.Events); n > 0 {
					since = page.Events[n-1].Index
				}
				// Long-poll for what comes next, within one request's bound.
				wait := min(20*time.Second, a.timeout-2*time.Second)
				q = url.Values{"since": {strconv.FormatUint(since, 10)}, "limit": {strconv.Itoa(limit)},
					"wait": {max(wait, time.Second).String()}, "watch": {strconv.FormatBool(!changesOnly)}}
			}
		}}
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many events per page")
	cmd.Flags().Uint64Var(&since, "since", 0, "only events with a raft index above this")
	cmd.Flags().IntVar(&latest, "latest", 0, "the newest N events")
	cmd.Flags().BoolVar(&follow, "follow", false, "keep waiting for new events (long-polls the leader) until Ctrl-C")
	cmd.Flags().BoolVar(&changesOnly, "changes-only", false, "leave out leader elections and datanode status events (the API's default)")
	return cmd
}

// eventDetail is an event's fields as sorted key=value pairs.
func eventDetail(e wire.Event) string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	kv := make([]string, 0, len(keys))
	for _, k := range keys {
		kv = append(kv, k+"="+e.Fields[k])
	}
	return strings.Join(kv, " ")
}
