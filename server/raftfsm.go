package server

import (
	"bufio"
	"io"

	"github.com/hashicorp/raft"

	"github.com/metasrv/metasrv/fsm"
)

// raftFSM adapts the pure fsm.FSM to raft's interfaces.
type raftFSM struct{ f *fsm.FSM }

var _ raft.BatchingFSM = raftFSM{}

func (r raftFSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	return r.f.Apply(l.Index, l.Data)
}

func (r raftFSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = r.Apply(l)
	}
	return out
}

func (r raftFSM) Snapshot() (raft.FSMSnapshot, error) {
	return fsmSnapshot{st: r.f.Snapshot()}, nil
}

func (r raftFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return r.f.Restore(bufio.NewReader(rc))
}

type fsmSnapshot struct{ st *fsm.State }

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriter(sink)
	if err := fsm.WriteSnapshot(w, s.st); err != nil {
		sink.Cancel()
		return err
	}
	if err := w.Flush(); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s fsmSnapshot) Release() {}

// StoreConfiguration makes raft hand configuration entries to the FSM too,
// so the FSM's applied index covers every entry after the leader's barrier
// (the read index waits on it).
func (r raftFSM) StoreConfiguration(index uint64, _ raft.Configuration) { r.f.Skip(index) }

var _ raft.ConfigurationStore = raftFSM{}
