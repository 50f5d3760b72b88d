package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// The maintenance flag as porcupine sees it: a register holding a bool.
//
// How client outcomes enter the history:
//   - read answered 200: a read returning the value;
//   - read that failed: dropped (a read has no effect);
//   - write answered 200: a write of the value;
//   - write answered 503 no_leader/not_leader, or whose connection could not
//     even be dialled: known not applied, dropped;
//   - any other failure (timeout, 504 outcome_unknown, a broken connection,
//     an unexpected status): the outcome is unknown, so the write is recorded
//     as open-ended (return time = +inf): porcupine may linearize it at any
//     point after its call, or after everything (that is, never observed).

type regInput struct {
	Write bool
	Value bool // for writes
}

type regOutput struct {
	Value   bool // for reads
	Unknown bool // a write with an unknown outcome
}

// opMeta annotates an operation for the visualization.
type opMeta struct {
	Node   string
	Status string
}

var registerModel = porcupine.Model{
	Init: func() any { return false },
	Step: func(state, input, output any) (bool, any) {
		st, in := state.(bool), input.(regInput)
		if in.Write {
			return true, in.Value
		}
		return output.(regOutput).Value == st, st
	},
	Equal: func(a, b any) bool { return a.(bool) == b.(bool) },
	Hash: func(state any) uint64 {
		if state.(bool) {
			return 1
		}
		return 0
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regInput), output.(regOutput)
		switch {
		case in.Write && out.Unknown:
			return fmt.Sprintf("set(%t) -> ?", in.Value)
		case in.Write:
			return fmt.Sprintf("set(%t)", in.Value)
		}
		return fmt.Sprintf("get() -> %t", out.Value)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("enabled=%t", state.(bool)) },
	DescribeOperationMetadata: func(info any) string {
		m, ok := info.(opMeta)
		if !ok {
			return ""
		}
		return m.Node + " " + m.Status
	},
}

// outcome classifies one client request.
type outcome int

const (
	outcomeOK         outcome = iota // 200
	outcomeNotApplied                // nothing was applied (503 no_leader/not_leader, dial failed); failed reads too
	outcomeUnknown                   // a write that may or may not have been applied
)

// Recorder collects one scenario's history, bounded in length.
type Recorder struct {
	mu      sync.Mutex
	start   time.Time
	max     int
	ops     []porcupine.Operation
	clients int
	ok      int
	failed  int
	unknown int
	dropped int // operations not recorded because the bound was reached
}

func newRecorder(max int) *Recorder {
	return &Recorder{start: time.Now(), max: max}
}

// now is the recorder's clock: monotonic nanoseconds since it started.
func (r *Recorder) now() int64 { return int64(time.Since(r.start)) }

// NewClient returns a fresh client id. A client whose write ended with an
// unknown outcome takes a new id, since that write stays open forever.
func (r *Recorder) NewClient() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clients++
	return r.clients - 1
}

// Full reports whether the history reached its bound.
func (r *Recorder) Full() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops) >= r.max
}

// Add records one finished request.
func (r *Recorder) Add(client int, in regInput, value bool, oc outcome, call, ret int64, meta opMeta) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch oc {
	case outcomeOK:
		r.ok++
	case outcomeNotApplied:
		r.failed++
		return
	case outcomeUnknown:
		r.unknown++
	}
	if len(r.ops) >= r.max {
		r.dropped++
		return
	}
	op := porcupine.Operation{ClientId: client, Input: in, Call: call, Return: ret, Metadata: meta}
	switch {
	case oc == outcomeUnknown:
		op.Output, op.Return = regOutput{Unknown: true}, math.MaxInt64
	case in.Write:
		op.Output = regOutput{}
	default:
		op.Output = regOutput{Value: value}
	}
	r.ops = append(r.ops, op)
}

// Counts returns ok, failed (known not applied, or failed reads) and
// unknown outcomes.
func (r *Recorder) Counts() (ok, failed, unknown int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ok, r.failed, r.unknown
}

func (r *Recorder) operations() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]porcupine.Operation(nil), r.ops...)
}

// linearizability is the verdict of one check.
type linearizability struct {
	Result   porcupine.CheckResult
	Ops      int
	Took     time.Duration
	Dropped  int
	info     porcupine.LinearizationInfo
	recorded []porcupine.Operation
}

// Check runs porcupine on the history. A timeout gives porcupine.Unknown,
// which the caller counts as a failure.
func (r *Recorder) Check(timeout time.Duration) linearizability {
	ops := r.operations()
	r.mu.Lock()
	dropped := r.dropped
	r.mu.Unlock()
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, timeout)
	return linearizability{Result: res, Ops: len(ops), Took: time.Since(start), Dropped: dropped, info: info, recorded: ops}
}

// WriteFiles writes the porcupine visualization and a plain-text history.
func (l linearizability) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := porcupine.VisualizePath(registerModel, l.info, filepath.Join(dir, "history.html")); err != nil {
		return fmt.Errorf("visualize: %w", err)
	}
	ops := append([]porcupine.Operation(nil), l.recorded...)
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
	var b strings.Builder
	fmt.Fprintf(&b, "# %d operations, times in ms since the scenario started; ret=inf: outcome unknown\n", len(ops))
	for _, op := range ops {
		ret := "inf"
		if op.Return != math.MaxInt64 {
			ret = fmt.Sprintf("%.3f", float64(op.Return)/1e6)
		}
		m, _ := op.Metadata.(opMeta)
		fmt.Fprintf(&b, "client=%d call=%.3f ret=%s %s node=%s status=%s\n", op.ClientId, float64(op.Call)/1e6, ret,
			registerModel.DescribeOperation(op.Input, op.Output), m.Node, m.Status)
	}
	return os.WriteFile(filepath.Join(dir, "history.txt"), []byte(b.String()), 0o644)
}
