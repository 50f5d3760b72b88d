package fsm

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// DefaultEventCapacity bounds the event ring.
const DefaultEventCapacity = 10000

// Config configures an FSM.
type Config struct {
	// EventCapacity bounds the event ring; 0 means DefaultEventCapacity.
	EventCapacity int
	// OnUnknown is called when an entry has a command type or version this
	// binary does not know. Replicas must never silently diverge, so the
	// server's hook logs and exits; the default panics.
	OnUnknown func(index uint64, typ string, v int)
	// Protocol is the highest command protocol this FSM knows; 0 means
	// Protocol. A command registered above it is unknown to it (OnUnknown).
	// It is for tests that play an older binary in process.
	Protocol int
}

// FSM is the replicated state machine. Apply is deterministic: it reads no
// clock, no randomness and does no I/O; timestamps travel in the commands.
type FSM struct {
	cfg Config

	mu      sync.RWMutex
	st      *State
	owners  owners // region ids by owning datanode, derived from st.Regions
	changed chan struct{}
}

// New returns an empty FSM.
func New(cfg Config) *FSM {
	if cfg.EventCapacity <= 0 {
		cfg.EventCapacity = DefaultEventCapacity
	}
	if cfg.Protocol <= 0 || cfg.Protocol > Protocol {
		cfg.Protocol = Protocol
	}
	if cfg.OnUnknown == nil {
		cfg.OnUnknown = func(index uint64, typ string, v int) {
			panic(fmt.Sprintf("fsm: entry %d has unknown command %q v%d", index, typ, v))
		}
	}
	return &FSM{cfg: cfg, st: newState(), owners: owners{}, changed: make(chan struct{})}
}

// Apply applies one raft log entry at index and returns its Result.
func (f *FSM) Apply(index uint64, data []byte) Result {
	var cmd Command
	if err := json.Unmarshal(data, &cmd); err != nil {
		// Undecodable bytes are as dangerous as an unknown type.
		f.cfg.OnUnknown(index, "<undecodable>", 0)
		return Result{Code: RejectInvalid, Reason: err.Error(), Index: index}
	}
	if !Known(cmd.Type, cmd.V) || ProtocolOf(cmd.Type) > f.cfg.Protocol {
		f.cfg.OnUnknown(index, cmd.Type, cmd.V)
		return Result{Code: "unknown_command", Reason: cmd.Type, Index: index}
	}

	f.mu.Lock()
	res := f.applyLocked(index, cmd)
	if index > f.st.AppliedIndex {
		f.st.AppliedIndex = index
	}
	res.Index = index
	res.Maintenance = cloneMaintenance(f.st.Maintenance)
	ch := f.changed
	f.changed = make(chan struct{})
	f.mu.Unlock()
	close(ch)
	return res
}

func (f *FSM) applyLocked(index uint64, cmd Command) Result {
	spec, ok := commands[cmd.Type]
	if !ok {
		// Unreachable: Known() was checked by the caller.
		return Result{Code: "unknown_command", Reason: cmd.Type}
	}
	return spec.apply(f, index, cmd.Payload)
}

func invalid(err error) Result {
	return Result{Code: RejectInvalid, Reason: err.Error()}
}

func (f *FSM) addEvent(e Event) {
	st := f.st
	st.Events = append(st.Events, e)
	if over := len(st.Events) - f.cfg.EventCapacity; over > 0 {
		st.EventsDroppedThrough = st.Events[over-1].Index
		st.Events = st.Events[over:]
	}
}

// Changed returns a channel that is closed at the next applied entry or
// restore. Waiters take a new channel after each wake-up.
func (f *FSM) Changed() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.changed
}

// AppliedIndex is the raft index of the last entry applied by this FSM
// (raft's own AppliedIndex may run ahead of it).
func (f *FSM) AppliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.AppliedIndex
}

// Snapshot returns a deep copy of the state, safe to serialise while Apply
// goes on.
func (f *FSM) Snapshot() *State {
	f.mu.RLock()
	defer f.mu.RUnlock()
	c := f.st.clone()
	return c
}

type snapshotFile struct {
	Format int    `json:"format"`
	State  *State `json:"state"`
}

// snapshotFormat is the newest on-disk snapshot version; Restore reads
// every version up to it. Format 1 is one JSON object; format 2
// (WriteSnapshotCompact) moves the routes to a binary section.
const snapshotFormat = 2

// WriteSnapshot serialises st (taken with Snapshot) to w in format 1, which
// every binary reads.
func WriteSnapshot(w io.Writer, st *State) error {
	return json.NewEncoder(w).Encode(snapshotFile{Format: 1, State: st})
}

// Restore replaces the whole state atomically with the snapshot in r.
func (f *FSM) Restore(r io.Reader) error {
	var sf snapshotFile
	dec := json.NewDecoder(r)
	if err := dec.Decode(&sf); err != nil {
		return fmt.Errorf("restore: decode snapshot: %w", err)
	}
	if sf.Format < 1 || sf.Format > snapshotFormat {
		return fmt.Errorf("restore: snapshot format %d is newer than this binary (%d)", sf.Format, snapshotFormat)
	}
	st := sf.State
	if st == nil {
		st = newState()
	}
	st.initMaps()
	if sf.Format == 2 {
		if err := readCompact(io.MultiReader(dec.Buffered(), r), st); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	own := buildOwners(st.Regions)
	f.mu.Lock()
	f.st = st
	f.owners = own
	ch := f.changed
	f.changed = make(chan struct{})
	f.mu.Unlock()
	close(ch)
	return nil
}

// Skip records that raft entry index was applied without a command for this
// FSM (a configuration change), so AppliedIndex keeps pace with the log.
func (f *FSM) Skip(index uint64) {
	f.mu.Lock()
	if index <= f.st.AppliedIndex {
		f.mu.Unlock()
		return
	}
	f.st.AppliedIndex = index
	ch := f.changed
	f.changed = make(chan struct{})
	f.mu.Unlock()
	close(ch)
}
