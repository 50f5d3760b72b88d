package main

// metactl roll datanodes: the seed's rolling upgrade of datanodes inside one
// maintenance window that this command owns (by its epoch), renewed per
// datanode, and left on with the reason when anything goes wrong.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/metasrv/metasrv/server/wire"
)

const rollReason = "metactl roll datanodes"

type rollOptions struct {
	exec    string
	ids     []uint64
	ttl     time.Duration
	timeout time.Duration
	by      string
}

func (a *app) rollCmd() *cobra.Command {
	var o rollOptions
	var ids string
	datanodes := &cobra.Command{Use: "datanodes", Short: "Run --exec on each datanode in turn inside one maintenance window, waiting for each to serve its regions again",
		Args: noArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(o.exec) == "" {
				return usagef("roll datanodes: --exec is required (e.g. --exec 'systemctl restart datanode@{id}')")
			}
			if o.ttl <= 0 || o.timeout <= 0 {
				return usagef("roll datanodes: --ttl and --timeout must be positive")
			}
			if o.ttl <= o.timeout+time.Minute {
				// The window must outlive one datanode's command and wait, or
				// it ends (and failover resumes) in the middle of one.
				return usagef("roll datanodes: --ttl %s must exceed --timeout %s by more than a minute", o.ttl, o.timeout)
			}
			for _, s := range strings.Split(ids, ",") {
				if s = strings.TrimSpace(s); s == "" {
					continue
				}
				id, err := strconv.ParseUint(s, 10, 64)
				if err != nil || id == 0 {
					return usagef("roll datanodes: --ids %q: want positive integers, comma-separated", ids)
				}
				o.ids = append(o.ids, id)
			}
			return a.rollDatanodes(cmd.Context(), o)
		}}
	f := datanodes.Flags()
	f.StringVar(&o.exec, "exec", "", "command run for each datanode by sh -c; {id} and {addr} are replaced")
	f.StringVar(&ids, "ids", "", "datanodes to roll, comma-separated, in this order (default: every active datanode by id)")
	f.DurationVar(&o.ttl, "ttl", 30*time.Minute, "maintenance TTL, renewed before each datanode: if metactl dies, maintenance ends by itself")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "how long to wait for each datanode to be alive and serve its regions again (exit 4)")
	f.StringVar(&o.by, "by", "", "who (recorded with the flag; default: the client's identity)")
	return group("roll", "Rolling operations", datanodes)
}

// rollDatanodes runs the roll. Maintenance must be off at the start; the
// window it opens is recognised by its epoch, and every later change is
// made with if_epoch, so someone else's change is never overwritten.
func (a *app) rollDatanodes(ctx context.Context, o rollOptions) error {
	m, err := a.maintenance(ctx)
	if err != nil {
		return err
	}
	if m.Enabled {
		return fmt.Errorf("maintenance is already on (by %q, reason %q): someone else's window; roll refuses to share it", m.By, m.Reason)
	}
	dns, err := a.datanodes(ctx)
	if err != nil {
		return err
	}
	order, err := rollOrder(dns, o.ids)
	if err != nil {
		return err
	}
	epoch, err := a.setMaintenance(ctx, o, m.Epoch, rollReason)
	if err != nil {
		return fmt.Errorf("enable maintenance: %w", err)
	}
	fmt.Fprintf(a.stdout, "maintenance: on (epoch %d, ttl %s) for %d datanodes: %s\n", epoch, o.ttl, len(order), joinIDs(order))
	for i, id := range order {
		if epoch, err = a.setMaintenance(ctx, o, epoch, fmt.Sprintf("%s: datanode %d (%d of %d)", rollReason, id, i+1, len(order))); err != nil {
			return a.rollFailed(err, id)
		}
		if err := a.rollOne(ctx, o, id, i+1, len(order)); err != nil {
			return a.rollAbort(epoch, o, id, order[i:], err)
		}
	}
	q := url.Values{"require_ready": {"true"}, "if_epoch": {strconv.FormatUint(epoch, 10)}}
	if _, err := a.cl.do(ctx, http.MethodPost, "/admin/maintenance/disable", q); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == wire.CodePreflightFailed {
			return withCode(exitNotReady, fmt.Errorf("every datanode rolled, but %w; maintenance stays on (metactl maintenance preflight)", err))
		}
		return a.rollFailed(err, 0)
	}
	fmt.Fprintf(a.stdout, "rolled %d datanodes; maintenance: off\n", len(order))
	return nil
}

// rollOne runs the command for one datanode and waits until it is alive
// and serves every region it owns.
func (a *app) rollOne(ctx context.Context, o rollOptions, id uint64, n, total int) error {
	d, err := a.datanode(ctx, id)
	if err != nil {
		return err
	}
	line := strings.NewReplacer("{id}", strconv.FormatUint(id, 10), "{addr}", d.Addr).Replace(o.exec)
	fmt.Fprintf(a.stdout, "[%d/%d] datanode %d (%s): %s\n", n, total, id, d.Addr, line)
	execCtx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	cmd := exec.CommandContext(execCtx, "sh", "-c", line)
	cmd.Stdout, cmd.Stderr = a.stdout, a.stderr
	cmd.Env = append(os.Environ(), "METACTL_DATANODE_ID="+strconv.FormatUint(id, 10), "METACTL_DATANODE_ADDR="+d.Addr)
	if err := cmd.Run(); err != nil {
		if execCtx.Err() == context.DeadlineExceeded {
			return withCode(exitTimeout, fmt.Errorf("--exec did not finish within --timeout %s", o.timeout))
		}
		return fmt.Errorf("--exec failed: %v", err)
	}
	// The leader's view lags a restart by a heartbeat or two: "back"
	// needs a heartbeat that arrived after the command finished.
	ran := time.Now()
	return a.waitFor(ctx, fmt.Sprintf("datanode %d back", id), o.timeout, 0, func(ctx context.Context) (int, string, bool, error) {
		d, err := a.datanode(ctx, id)
		if err != nil {
			return 0, "", false, err
		}
		var routes []wire.Route
		if _, err := a.cl.getJSON(ctx, "/admin/regions", url.Values{"datanode": {strconv.FormatUint(id, 10)}}, &routes); err != nil {
			return 0, "", false, err
		}
		left := 0
		for _, r := range routes {
			if r.InFlight {
				left++
			}
		}
		if d.Status != "alive" {
			return left, "datanode " + d.Status, false, nil
		}
		if time.Duration(d.SecondsSinceHeartbeat*float64(time.Second)) >= time.Since(ran) {
			return left, "no heartbeat since the command yet", false, nil
		}
		return left, fmt.Sprintf("%d of %d regions not served yet", left, len(routes)), left == 0, nil
	})
}

// rollAbort leaves maintenance on, saying where the roll stopped, with its
// TTL, and tells how to go on.
func (a *app) rollAbort(epoch uint64, o rollOptions, id uint64, rest []uint64, cause error) error {
	// The command's own context may be gone (Ctrl-C): the note still goes out.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reason := oneLine(fmt.Sprintf("roll aborted at datanode %d: %v", id, cause))
	if len(reason) > 1000 { // the server takes at most 1 KiB
		reason = reason[:1000]
	}
	if _, err := a.setMaintenance(ctx, o, epoch, reason); err != nil {
		fmt.Fprintf(a.stderr, "metactl: could not record the abort in the maintenance reason: %v\n", oneLine(err.Error()))
	}
	fmt.Fprintf(a.stderr, "metactl: %s; maintenance stays on (ttl %s).\n  to go on: fix datanode %d, then metactl maintenance disable && metactl roll datanodes --exec '%s' --ids %s\n",
		reason, o.ttl, id, o.exec, joinIDs(rest))
	var ce *exitErr
	if errors.As(cause, &ce) {
		return withCode(ce.code, errors.New(reason))
	}
	return errors.New(reason)
}

// rollFailed reports a maintenance write that failed; an epoch mismatch
// means someone else changed the flag, which is then left alone.
func (a *app) rollFailed(err error, id uint64) error {
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == "epoch_mismatch" {
		return fmt.Errorf("maintenance was changed by someone else (%w); roll stops and leaves it alone", err)
	}
	if id != 0 {
		return fmt.Errorf("before datanode %d: %w", id, err)
	}
	return err
}

// setMaintenance turns maintenance on (or renews it) with the TTL if the
// epoch is still ifEpoch, and returns the new epoch: read back, and
// checked to carry this write's reason.
func (a *app) setMaintenance(ctx context.Context, o rollOptions, ifEpoch uint64, reason string) (uint64, error) {
	q := url.Values{"reason": {reason}, "ttl": {o.ttl.String()}, "if_epoch": {strconv.FormatUint(ifEpoch, 10)}}
	if o.by != "" {
		q.Set("by", o.by)
	}
	if _, err := a.cl.do(ctx, http.MethodPost, "/admin/maintenance/enable", q); err != nil {
		return 0, err
	}
	m, err := a.maintenance(ctx)
	if err != nil {
		return 0, err
	}
	if !m.Enabled || m.Reason != reason || m.Epoch <= ifEpoch {
		return 0, fmt.Errorf("maintenance changed right after this write (now %s)", maintenanceLine(m))
	}
	return m.Epoch, nil
}

func (a *app) maintenance(ctx context.Context) (wire.Maintenance, error) {
	var m wire.Maintenance
	_, err := a.cl.getJSON(ctx, "/admin/maintenance/status", url.Values{"verbose": {"true"}}, &m)
	return m, err
}

func (a *app) datanodes(ctx context.Context) ([]wire.Datanode, error) {
	var dns []wire.Datanode
	_, err := a.cl.getJSON(ctx, "/admin/datanodes", nil, &dns)
	return dns, err
}

func (a *app) datanode(ctx context.Context, id uint64) (wire.Datanode, error) {
	dns, err := a.datanodes(ctx)
	if err != nil {
		return wire.Datanode{}, err
	}
	for _, d := range dns {
		if d.ID == id {
			return d, nil
		}
	}
	// A 4xx: a wait on it stops at once (waitFor).
	return wire.Datanode{}, &apiError{Status: http.StatusNotFound, Code: "not_found", Msg: fmt.Sprintf("no datanode %d", id)}
}

// rollOrder is --ids as given (each must be registered), or every active
// datanode by id.
func rollOrder(dns []wire.Datanode, ids []uint64) ([]uint64, error) {
	known := map[uint64]bool{}
	var all []uint64
	for _, d := range dns {
		known[d.ID] = true
		if d.AdminState == "" || d.AdminState == "active" {
			all = append(all, d.ID)
		}
	}
	if len(ids) == 0 {
		slices.Sort(all)
		if len(all) == 0 {
			return nil, errors.New("no active datanode to roll")
		}
		return all, nil
	}
	for _, id := range ids {
		if !known[id] {
			return nil, fmt.Errorf("--ids: datanode %d is not registered", id)
		}
	}
	return ids, nil
}

func joinIDs(ids []uint64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatUint(id, 10)
	}
	return strings.Join(s, ",")
}
