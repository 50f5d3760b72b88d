package leader

import (
	"context"
	"strconv"
	"time"

	"github.com/metasrv/metasrv/failover"
	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/raftnode"
)

// The watch events: the leader records its own election, and each
// datanode turning suspect, failed or recovered, as RecordWatchEvent
// entries (a ring of their own in the FSM). They are proposed only once
// every member speaks fsm.WatchProtocol, so no older member ever meets the
// command.

// watchWindow is the least time between two events of one type for one
// datanode: a datanode that flaps is one event per window, not one per
// heartbeat.
func (l *Leader) watchWindow() time.Duration {
	return max(10*l.cfg.HeartbeatInterval, 30*time.Second)
}

// watchWorker runs for one term.
func (l *Leader) watchWorker(mon *failover.Monitor) func(ctx context.Context) {
	return func(ctx context.Context) {
		tick := max(l.cfg.FailoverTick, 100*time.Millisecond)
		// Elected: retried for a while until it lands (a new cluster
		// records its members' protocol levels just after its first
		// election); after that, the election goes unrecorded.
		for until := time.Now().Add(30 * time.Second); time.Now().Before(until); {
			if l.node.ClusterProtocol() >= fsm.WatchProtocol &&
				l.propose(ctx, fsm.RecordWatchEvent{Type: fsm.EventLeaderElected, Node: l.cfg.NodeID, Term: l.node.Status().Term, Time: l.cfg.Now().UTC()}) {
				break
			}
			if !raftnode.SleepCtx(ctx, tick) {
				return
			}
		}
		last := map[uint64]string{}    // status at the previous tick
		sent := map[string]time.Time{} // "type/id" → when last recorded
		for first := true; ; first = false {
			if l.node.ClusterProtocol() >= fsm.WatchProtocol {
				for _, d := range l.fsm.Datanodes() {
					now := mon.Status(d.ID).Status
					prev, seen := last[d.ID]
					last[d.ID] = now
					if first || !seen || prev == now {
						continue // a new term starts from what it finds
					}
					typ := ""
					switch {
					case now == failover.StatusSuspect:
						typ = fsm.EventDatanodeSuspect
					case now == failover.StatusFailed:
						typ = fsm.EventDatanodeFailed
					case now == failover.StatusAlive && (prev == failover.StatusSuspect || prev == failover.StatusFailed):
						typ = fsm.EventDatanodeRecovered
					}
					key := typ + "/" + strconv.FormatUint(d.ID, 10)
					if typ == "" || l.cfg.Now().Sub(sent[key]) < l.watchWindow() {
						continue
					}
					if l.propose(ctx, fsm.RecordWatchEvent{Type: typ, Datanode: d.ID, Addr: d.Addr, Detail: "was " + prev, Time: l.cfg.Now().UTC()}) {
						sent[key] = l.cfg.Now()
					}
				}
			}
			if !raftnode.SleepCtx(ctx, tick) {
				return
			}
		}
	}
}

// propose records one watch event within a heartbeat interval; a failure
// is logged and the event dropped (they are for watching, not for state).
func (l *Leader) propose(ctx context.Context, e fsm.RecordWatchEvent) bool {
	ctx, cancel := context.WithTimeout(ctx, max(l.cfg.HeartbeatInterval, time.Second))
	defer cancel()
	if _, err := l.node.Commit(ctx, fsm.CmdRecordWatchEvent, e); err != nil {
		l.log.Debug("watch event not recorded", "type", e.Type, "error", err)
		return false
	}
	return true
}
