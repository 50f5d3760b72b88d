package health

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/metasrv/metasrv/server/wire"
)

// Indicator names, in the order a report lists them.
const (
	Quorum          = "quorum"
	LeaderStability = "leader_stability"
	RaftStorage     = "raft_storage"
	Maintenance     = "maintenance"
	Datanodes       = "datanodes"
	Regions         = "regions"
	Failover        = "failover"
	Balancer        = "balancer"
	Certificates    = "certificates"
)

// Names lists every indicator.
var Names = []string{Quorum, LeaderStability, RaftStorage, Maintenance, Datanodes, Regions, Failover, Balancer, Certificates}

// Thresholds.
const (
	LeaderWindow        = 30 * time.Minute
	LeaderChangesYellow = 4
	LeaderChangesRed    = 10
	CommitYellow        = 100 * time.Millisecond
	CommitRed           = time.Second
	CertYellow          = 30 * 24 * time.Hour
	CertRed             = 7 * 24 * time.Hour
)

// Inputs is what the leader sees when the report is asked for.
type Inputs struct {
	Now time.Time

	Voters      []string // ids of the voters
	Unreachable []string // voters raft failed to reach since they last answered

	LeaderChanges int // observed by this node within LeaderWindow
	CommitP99     time.Duration
	CommitSamples int

	Maintenance wire.Maintenance
	WarnAfter   time.Duration // --maintenance-warn-after

	Datanodes []wire.Datanode
	InFlight  []uint64 // regions whose owner does not serve them yet

	FailoverPaused string // why failover waits ("" when it runs)
	BalancerPaused string // why the balancer waits ("" when it runs)

	Certificates []Cert // empty when TLS is off
}

// Cert is one certificate in use.
type Cert struct {
	Use, Subject, File string
	NotAfter           time.Time
}

// Evaluate builds the report.
func Evaluate(in Inputs) wire.HealthReport {
	r := wire.HealthReport{Status: wire.HealthGreen, Indicators: map[string]wire.HealthIndicator{
		Quorum:          quorum(in),
		LeaderStability: leaderStability(in),
		RaftStorage:     raftStorage(in),
		Maintenance:     maintenance(in),
		Datanodes:       datanodes(in),
		Regions:         regions(in),
		Failover:        failoverIndicator(in),
		Balancer:        balancer(in),
		Certificates:    certificates(in),
	}}
	for _, ind := range r.Indicators {
		r.Status = Worst(r.Status, ind.Status)
	}
	return r
}

// Worst is the worse of two statuses.
func Worst(a, b string) string {
	if Rank(b) > Rank(a) {
		return b
	}
	return a
}

// Rank orders statuses: green 0, yellow 1, red 2 (the metric's value).
func Rank(s string) int {
	switch s {
	case wire.HealthRed:
		return 2
	case wire.HealthYellow:
		return 1
	}
	return 0
}

func green(symptom string, details map[string]any) wire.HealthIndicator {
	return wire.HealthIndicator{Status: wire.HealthGreen, Symptom: symptom, Details: details, Impacts: []string{}, Actions: []string{}}
}

func quorum(in Inputs) wire.HealthIndicator {
	n, down := len(in.Voters), len(in.Unreachable)
	need := n/2 + 1
	d := map[string]any{"voters": n, "unreachable": sorted(in.Unreachable), "quorum": need}
	switch {
	case n-down < need:
		return wire.HealthIndicator{Status: wire.HealthRed, Details: d,
			Symptom: fmt.Sprintf("%d of %d voters unreachable: fewer than a quorum (%d) answer", down, n, need),
			Impacts: []string{"writes (maintenance, moves, registrations) cannot commit", "the leader will step down"},
			Actions: []string{"bring the unreachable members back (metactl member list)", "check the network between members' raft ports"}}
	case down > 0:
		return wire.HealthIndicator{Status: wire.HealthYellow, Details: d,
			Symptom: fmt.Sprintf("%d of %d voters unreachable: %s", down, n, strings.Join(sorted(in.Unreachable), ", ")),
			Impacts: []string{fmt.Sprintf("%d more voter failures lose the quorum", n-down-need+1)},
			Actions: []string{"bring the unreachable members back, or replace them (metactl member remove, member add)"}}
	}
	return green(fmt.Sprintf("all %d voters reachable", n), d)
}

func leaderStability(in Inputs) wire.HealthIndicator {
	c := in.LeaderChanges
	d := map[string]any{"leader_changes": c, "window_seconds": LeaderWindow.Seconds()}
	ind := wire.HealthIndicator{Details: d, Symptom: fmt.Sprintf("%d leader changes in the last %s", c, LeaderWindow),
		Impacts: []string{"each change pauses writes for an election and restarts the failure detector's grace period"},
		Actions: []string{"look for members that pause (GC, disk, CPU starvation) or a flaky network between raft ports",
			"check metasrv_raft_last_contact_seconds on the followers"}}
	switch {
	case c >= LeaderChangesRed:
		ind.Status = wire.HealthRed
	case c >= LeaderChangesYellow:
		ind.Status = wire.HealthYellow
	default:
		return green(ind.Symptom, d)
	}
	return ind
}

func raftStorage(in Inputs) wire.HealthIndicator {
	d := map[string]any{"commit_p99_seconds": in.CommitP99.Seconds(), "samples": in.CommitSamples}
	if in.CommitSamples == 0 {
		return green("no write committed by this leader yet", d)
	}
	ind := wire.HealthIndicator{Details: d,
		Symptom: fmt.Sprintf("writes take %s to commit (99th percentile of the last %d)", in.CommitP99.Round(time.Millisecond), in.CommitSamples),
		Impacts: []string{"maintenance and region moves are slow to take effect; writes may time out (503 timeout)"},
		Actions: []string{"check the disk under --data-dir on every member (fsync latency) and the network between members"}}
	switch {
	case in.CommitP99 >= CommitRed:
		ind.Status = wire.HealthRed
	case in.CommitP99 >= CommitYellow:
		ind.Status = wire.HealthYellow
	default:
		return green(ind.Symptom, d)
	}
	return ind
}

func maintenance(in Inputs) wire.HealthIndicator {
	m := in.Maintenance
	d := map[string]any{"enabled": m.Enabled, "by": m.By, "reason": m.Reason}
	if !m.Enabled {
		return green("maintenance is off: failover and the balancer run", d)
	}
	var on time.Duration
	if m.Since != nil {
		on = in.Now.Sub(*m.Since)
		d["on_seconds"] = on.Seconds()
	}
	who := fmt.Sprintf("maintenance is on (by %q, reason %q) for %s", m.By, m.Reason, on.Round(time.Second))
	impacts := []string{"no failover: regions of a failed datanode stay unserved", "no automatic balancing"}
	switch {
	case m.ExpiresAt != nil && !in.Now.Before(*m.ExpiresAt):
		d["expired_seconds_ago"] = in.Now.Sub(*m.ExpiresAt).Seconds()
		return wire.HealthIndicator{Status: wire.HealthRed, Details: d, Impacts: impacts,
			Symptom: who + fmt.Sprintf(", past its TTL (expired %s ago)", in.Now.Sub(*m.ExpiresAt).Round(time.Second)),
			Actions: []string{"the leader should have turned it off: check the leader's log", "metactl maintenance disable"}}
	case m.ExpiresAt == nil && in.WarnAfter > 0 && on >= in.WarnAfter:
		return wire.HealthIndicator{Status: wire.HealthYellow, Details: d, Impacts: impacts,
			Symptom: who + fmt.Sprintf(", longer than --maintenance-warn-after (%s) and without a TTL", in.WarnAfter),
			Actions: []string{"if the work is done: metactl maintenance disable", "else set a TTL: metactl maintenance enable --reason R --ttl D"}}
	}
	if m.ExpiresAt != nil {
		d["expires_in_seconds"] = m.ExpiresAt.Sub(in.Now).Seconds()
	}
	ind := green(who, d)
	ind.Impacts = impacts
	return ind
}

func datanodes(in Inputs) wire.HealthIndicator {
	var suspect, failed []string
	for _, dn := range in.Datanodes {
		if dn.AdminState != "" && dn.AdminState != "active" {
			continue // cordoned or draining: expected to be looked after
		}
		name := fmt.Sprintf("%d (%s)", dn.ID, dn.Addr)
		switch dn.Status {
		case "failed":
			failed = append(failed, name)
		case "suspect":
			suspect = append(suspect, name)
		}
	}
	d := map[string]any{"datanodes": len(in.Datanodes), "suspect": nonNil(suspect), "failed": nonNil(failed)}
	switch {
	case len(failed) > 0:
		return wire.HealthIndicator{Status: wire.HealthRed, Details: d,
			Symptom: fmt.Sprintf("%d of %d datanodes failed: %s", len(failed), len(in.Datanodes), strings.Join(failed, ", ")),
			Impacts: []string{"their regions are unserved until failover moves them (not during maintenance)"},
			Actions: []string{"restart or replace the failed datanodes", "metactl datanode list"}}
	case len(suspect) > 0:
		return wire.HealthIndicator{Status: wire.HealthYellow, Details: d,
			Symptom: fmt.Sprintf("%d of %d datanodes missed heartbeats: %s", len(suspect), len(in.Datanodes), strings.Join(suspect, ", ")),
			Impacts: []string{"they fail over if they stay silent"},
			Actions: []string{"check those datanodes and the network to the metasrv leader"}}
	}
	return green(fmt.Sprintf("all %d datanodes alive", len(in.Datanodes)), d)
}

func regions(in Inputs) wire.HealthIndicator {
	unserved := 0
	for _, dn := range in.Datanodes {
		if dn.Status == "failed" {
			unserved += dn.Regions
		}
	}
	d := map[string]any{"unserved": unserved, "in_flight": len(in.InFlight)}
	switch {
	case unserved > 0:
		return wire.HealthIndicator{Status: wire.HealthRed, Details: d,
			Symptom: fmt.Sprintf("%d regions sit on failed datanodes", unserved),
			Impacts: []string{"reads and writes to those regions fail"},
			Actions: []string{"see the datanodes and failover indicators", "metactl region list"}}
	case len(in.InFlight) > 0:
		return wire.HealthIndicator{Status: wire.HealthYellow, Details: d,
			Symptom: fmt.Sprintf("%d regions are moving (their new owner does not serve them yet)", len(in.InFlight)),
			Impacts: []string{"those regions are briefly unavailable"},
			Actions: []string{"wait; if it lasts, check the new owners' heartbeats"}}
	}
	return green("every region is served by its owner", d)
}

func failoverIndicator(in Inputs) wire.HealthIndicator {
	var deferred []uint64
	braked := false
	for _, dn := range in.Datanodes {
		if dn.FailoverDeferred {
			deferred = append(deferred, dn.ID)
		}
		braked = braked || dn.FailoverBraked
	}
	d := map[string]any{"deferred": nonNilIDs(deferred), "braked": braked, "paused": in.FailoverPaused}
	switch {
	case braked:
		return wire.HealthIndicator{Status: wire.HealthRed, Details: d,
			Symptom: "failover is braked: more than half the datanodes look failed",
			Impacts: []string{"no region moves off failed datanodes, so as not to pile them onto the few left"},
			Actions: []string{"find why so many datanodes look failed (a network split between them and metasrv?)"}}
	case len(deferred) > 0:
		return wire.HealthIndicator{Status: wire.HealthYellow, Details: d,
			Symptom: fmt.Sprintf("failover of %d failed datanodes is deferred (%s)", len(deferred), orNone(in.FailoverPaused)),
			Impacts: []string{"their regions stay unserved until failover resumes"},
			Actions: []string{"end the maintenance window once the datanodes are back (metactl maintenance disable)", "or migrate their regions by hand (metactl region migrate)"}}
	}
	if in.FailoverPaused != "" {
		ind := green("failover is paused ("+in.FailoverPaused+"); no datanode needs it", d)
		ind.Impacts = []string{"a datanode failing now is not failed over"}
		return ind
	}
	return green("failover runs", d)
}

func balancer(in Inputs) wire.HealthIndicator {
	d := map[string]any{"paused": in.BalancerPaused}
	if in.BalancerPaused == "" {
		return green("the balancer runs", d)
	}
	ind := green("the balancer is paused: "+in.BalancerPaused, d)
	ind.Impacts = []string{"no automatic rebalancing or drains"}
	return ind
}

func certificates(in Inputs) wire.HealthIndicator {
	if len(in.Certificates) == 0 {
		return green("TLS is off", map[string]any{"certificates": 0})
	}
	cs := append([]Cert(nil), in.Certificates...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].NotAfter.Before(cs[j].NotAfter) })
	first := cs[0]
	left := first.NotAfter.Sub(in.Now)
	d := map[string]any{"certificates": len(cs), "soonest": map[string]any{"use": first.Use, "subject": first.Subject,
		"file": first.File, "not_after": first.NotAfter.UTC().Format(time.RFC3339), "seconds_left": left.Seconds()}}
	symptom := fmt.Sprintf("the soonest certificate (%s, %s in %s) expires in %s", first.Subject, first.Use, first.File, left.Round(time.Hour))
	if left <= 0 {
		symptom = fmt.Sprintf("the certificate %s (%s in %s) has expired", first.Subject, first.Use, first.File)
	}
	ind := wire.HealthIndicator{Details: d, Symptom: symptom,
		Impacts: []string{"when it expires, members, clients or datanodes using it are refused"},
		Actions: []string{"issue a new one (metasrv tls node|datanode|client), replace the file and send SIGHUP (docs/operations/enable-tls.md)"}}
	switch {
	case left < CertRed:
		ind.Status = wire.HealthRed
	case left < CertYellow:
		ind.Status = wire.HealthYellow
	default:
		return green(symptom, d)
	}
	return ind
}

func sorted(s []string) []string {
	out := append([]string{}, s...)
	sort.Strings(out)
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilIDs(s []uint64) []uint64 {
	if s == nil {
		return []uint64{}
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}
