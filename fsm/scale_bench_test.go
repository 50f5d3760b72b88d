package fsm_test

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
)

// bigFSM builds an FSM through Apply, as the leader would: datanodes
// registered, then tables of 10 000 regions spread evenly over them.
func bigFSM(tb testing.TB, datanodes, regions int) *fsm.FSM {
	tb.Helper()
	f := newFSM(tb, 0)
	idx := uint64(1)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for d := 1; d <= datanodes; d++ {
		res := f.Apply(idx, enc(tb, fsm.CmdRegisterDatanode, fsm.RegisterDatanode{ID: uint64(d),
			Addr: fmt.Sprintf("10.0.%d.%d:4001", d/256, d%256), Time: now}))
		if !res.Applied {
			tb.Fatalf("register %d: %+v", d, res)
		}
		idx++
	}
	const perTable = 10000
	next := 0
	for t := 0; t*perTable < regions; t++ {
		k := min(perTable, regions-t*perTable)
		placement := make([]uint64, k)
		for i := range placement {
			placement[i] = uint64(next%datanodes + 1)
			next++
		}
		res := f.Apply(idx, enc(tb, fsm.CmdCreateTable, fsm.CreateTable{Name: fmt.Sprintf("table_%04d", t), Placement: placement, Time: now}))
		if !res.Applied {
			tb.Fatalf("create table %d: %+v", t, res.Code)
		}
		idx++
	}
	return f
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// BenchmarkSnapshot1MRegions measures what the leader pays for a
// snapshot of 1 000 000 regions (10 000 datanodes × 100): the copy taken
// under the lock (Snapshot), its serialisation (Persist, WriteSnapshot),
// and Restore on a fresh FSM; plus the heap the state itself holds.
// Custom metrics: snapshot-MB, snapshot-ms (copy + write), restore-ms,
// state-heap-MB, snapshot-alloc-MB (garbage made by one snapshot).
//
//	go test -run '^$' -bench Snapshot1M -benchtime 3x ./fsm
func BenchmarkSnapshot1MRegions(b *testing.B) {
	benchSnapshot(b, 10000, 1_000_000, fsm.WriteSnapshotCompact)
}

// BenchmarkSnapshot1MRegionsFormat1 is the same with the JSON format 1.
func BenchmarkSnapshot1MRegionsFormat1(b *testing.B) {
	benchSnapshot(b, 10000, 1_000_000, fsm.WriteSnapshot)
}

// BenchmarkSnapshot100kRegions is format 2 at a tenth of the size.
func BenchmarkSnapshot100kRegions(b *testing.B) {
	benchSnapshot(b, 1000, 100_000, fsm.WriteSnapshotCompact)
}

func benchSnapshot(b *testing.B, datanodes, regions int, write func(io.Writer, *fsm.State) error) {
	base := heapInUse()
	f := bigFSM(b, datanodes, regions)
	stateHeap := heapInUse() - base
	if got := len(f.RegionsOf(1)); got != regions/datanodes {
		b.Fatalf("datanode 1 owns %d regions, want %d", got, regions/datanodes)
	}
	var size int
	var snapD, restD time.Duration
	var alloc uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		t := time.Now()
		st := f.Snapshot()
		var buf bytes.Buffer
		if err := write(&buf, st); err != nil {
			b.Fatal(err)
		}
		snapD += time.Since(t)
		runtime.ReadMemStats(&ms1)
		alloc += ms1.TotalAlloc - ms0.TotalAlloc
		size = buf.Len()
		g := fsm.New(fsm.Config{})
		t = time.Now()
		if err := g.Restore(&buf); err != nil {
			b.Fatal(err)
		}
		restD += time.Since(t)
		if got := len(g.RegionsOf(uint64(datanodes))); got != regions/datanodes {
			b.Fatalf("restored datanode %d owns %d regions, want %d", datanodes, got, regions/datanodes)
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(size)/1e6, "snapshot-MB")
	b.ReportMetric(float64(snapD.Milliseconds())/n, "snapshot-ms")
	b.ReportMetric(float64(restD.Milliseconds())/n, "restore-ms")
	b.ReportMetric(float64(stateHeap)/1e6, "state-heap-MB")
	b.ReportMetric(float64(alloc)/n/1e6, "snapshot-alloc-MB")
	runtime.KeepAlive(f)
}

// BenchmarkRegionsOf is the heartbeat handler's lookup of one datanode's
// regions among 1 000 000 (10 000 datanodes × 100).
func BenchmarkRegionsOf(b *testing.B) {
	f := bigFSM(b, 10000, 1_000_000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if len(f.RegionsOf(uint64(i%10000+1))) != 100 {
			b.Fatal("want 100 regions")
		}
	}
}
