package fsm

import (
	"fmt"
	"strconv"
)

// WatchCapacity bounds the watch ring (leader and datanode status events).
const WatchCapacity = 1000

func (f *FSM) applyRecordWatchEvent(index uint64, c RecordWatchEvent) Result {
	e := Event{Index: index, Time: c.Time, Type: c.Type, Reason: c.Detail, Fields: map[string]string{}}
	switch c.Type {
	case EventLeaderElected:
		if c.Node == "" {
			return Result{Code: RejectInvalid, Reason: "leader_elected needs node"}
		}
		e.Fields["node"] = c.Node
		e.Fields["term"] = strconv.FormatUint(c.Term, 10)
	case EventDatanodeSuspect, EventDatanodeFailed, EventDatanodeRecovered:
		if c.Datanode == 0 {
			return Result{Code: RejectInvalid, Reason: c.Type + " needs datanode"}
		}
		e.Fields["datanode"] = strconv.FormatUint(c.Datanode, 10)
		e.Fields["addr"] = c.Addr
	default:
		return Result{Code: RejectInvalid, Reason: fmt.Sprintf("unknown watch event type %q", c.Type)}
	}
	f.st.Watch = append(f.st.Watch, e)
	if over := len(f.st.Watch) - WatchCapacity; over > 0 {
		f.st.Watch = f.st.Watch[over:]
	}
	return Result{Applied: true}
}
