package main

import (
	"errors"
	"math"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func op(client int, in regInput, out regOutput, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
}

func TestRegisterModel(t *testing.T) {
	set := func(v bool) regInput { return regInput{Write: true, Value: v} }
	get := regInput{}
	tests := []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"read after an acknowledged write sees it", []porcupine.Operation{
			op(0, set(true), regOutput{}, 0, 10),
			op(1, get, regOutput{Value: true}, 20, 30),
		}, porcupine.Ok},
		{"an acknowledged write lost", []porcupine.Operation{
			op(0, set(true), regOutput{}, 0, 10),
			op(1, get, regOutput{Value: false}, 20, 30),
		}, porcupine.Illegal},
		{"an unknown write may take effect late", []porcupine.Operation{
			op(0, set(true), regOutput{Unknown: true}, 0, math.MaxInt64),
			op(1, get, regOutput{Value: false}, 20, 30),
			op(1, get, regOutput{Value: true}, 40, 50),
		}, porcupine.Ok},
		{"an unknown write may never take effect", []porcupine.Operation{
			op(0, set(true), regOutput{Unknown: true}, 0, math.MaxInt64),
			op(1, get, regOutput{Value: false}, 20, 30),
		}, porcupine.Ok},
		{"an unknown write cannot take effect twice", []porcupine.Operation{
			op(0, set(true), regOutput{Unknown: true}, 0, math.MaxInt64),
			op(1, get, regOutput{Value: true}, 20, 30),
			op(2, set(false), regOutput{}, 40, 50),
			op(1, get, regOutput{Value: true}, 60, 70),
		}, porcupine.Illegal},
		{"a stale read", []porcupine.Operation{
			op(0, set(true), regOutput{}, 0, 10),
			op(0, set(false), regOutput{}, 20, 30),
			op(1, get, regOutput{Value: true}, 40, 50),
		}, porcupine.Illegal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperationsTimeout(registerModel, tc.ops, 0); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	w := regInput{Write: true, Value: true}
	r := regInput{}
	dial := &net.OpError{Op: "dial", Err: errors.New("connection refused")}
	read := &net.OpError{Op: "read", Err: errors.New("connection reset")}
	tests := []struct {
		name string
		in   regInput
		res  httpResult
		want outcome
		v    bool
	}{
		{"write 200", w, httpResult{Status: 200, Body: []byte(`{"enabled":true}`)}, outcomeOK, true},
		{"read 200", r, httpResult{Status: 200, Body: []byte(`{"enabled":false}`)}, outcomeOK, false},
		{"write 503 no_leader", w, httpResult{Status: 503, Body: []byte(`{"code":"no_leader"}`)}, outcomeNotApplied, false},
		{"write 503 not_leader", w, httpResult{Status: 503, Body: []byte(`{"code":"not_leader"}`)}, outcomeNotApplied, false},
		{"write 504 outcome_unknown", w, httpResult{Status: 504, Body: []byte(`{"code":"outcome_unknown"}`)}, outcomeUnknown, false},
		{"write 503 other code", w, httpResult{Status: 503, Body: []byte(`{"code":"timeout"}`)}, outcomeUnknown, false},
		{"write 500", w, httpResult{Status: 500}, outcomeUnknown, false},
		{"write 200 bad body", w, httpResult{Status: 200, Body: []byte(`oops`)}, outcomeUnknown, false},
		{"write never dialled", w, httpResult{Err: dial}, outcomeNotApplied, false},
		{"write broken connection", w, httpResult{Err: read}, outcomeUnknown, false},
		{"read failed", r, httpResult{Err: read}, outcomeNotApplied, false},
		{"read 504", r, httpResult{Status: 504}, outcomeNotApplied, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, v, _ := classify(tc.in, tc.res)
			if got != tc.want || v != tc.v {
				t.Fatalf("got %v %t, want %v %t", got, v, tc.want, tc.v)
			}
		})
	}
}

func TestRecorderOpenEnded(t *testing.T) {
	rec := newRecorder(10)
	c := rec.NewClient()
	rec.Add(c, regInput{Write: true, Value: true}, false, outcomeUnknown, 1, 2, opMeta{})
	rec.Add(c, regInput{Write: true, Value: true}, false, outcomeNotApplied, 3, 4, opMeta{})
	rec.Add(c, regInput{}, true, outcomeOK, 5, 6, opMeta{})
	ops := rec.operations()
	if len(ops) != 2 || ops[0].Return != math.MaxInt64 || !ops[0].Output.(regOutput).Unknown {
		t.Fatalf("ops = %+v", ops)
	}
	if ok, failed, unknown := rec.Counts(); ok != 1 || failed != 1 || unknown != 1 {
		t.Fatalf("counts %d/%d/%d", ok, failed, unknown)
	}
	for i := 0; i < 20; i++ {
		rec.Add(c, regInput{}, true, outcomeOK, 7, 8, opMeta{})
	}
	if !rec.Full() || len(rec.operations()) != 10 {
		t.Fatalf("history not bounded: %d", len(rec.operations()))
	}
}

func TestAutoMovesDuringMaintenance(t *testing.T) {
	mv := func(i uint64, cause string) event {
		return event{Index: i, Type: "region_moved", Fields: map[string]string{"cause": cause}}
	}
	evs := []event{
		mv(1, "balance"),
		{Index: 2, Type: "maintenance_enabled"},
		mv(3, "manual"),
		mv(4, "drain"),
		mv(5, "failover"),
		{Index: 6, Type: "maintenance_updated"},
		mv(7, "balance"),
		{Index: 8, Type: "maintenance_expired"},
		mv(9, "failover"),
		{Index: 10, Type: "maintenance_enabled"},
		{Index: 11, Type: "maintenance_disabled"},
		mv(12, "balance"),
	}
	bad := autoMovesDuringMaintenance(evs)
	if len(bad) != 2 {
		t.Fatalf("got %v, want the moves at 5 and 7", bad)
	}
}

func TestDiffEvents(t *testing.T) {
	a := []event{{Index: 1, Type: "x"}, {Index: 2, Type: "y"}, {Index: 3, Type: "z"}}
	if d := diffEvents(a, a[:2]); d != "" {
		t.Fatalf("a prefix differs: %s", d)
	}
	b := []event{{Index: 1, Type: "x"}, {Index: 2, Type: "other"}}
	if d := diffEvents(a, b); d == "" {
		t.Fatal("a different event at the same index went unnoticed")
	}
	c := []event{{Index: 1, Type: "x"}, {Index: 3, Type: "z"}}
	if d := diffEvents(a, c); d == "" {
		t.Fatal("a missing event went unnoticed")
	}
}

func TestSummarizeFaults(t *testing.T) {
	got := summarizeFaults([]string{"docker kill metasrv1 (leader)", "docker kill datanode2", "network disconnect metasrv3", "docker pause metasrv2"})
	if want := "kill×2 partition×1 pause×1"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestWriteFilesOnIllegalHistory(t *testing.T) {
	rec := newRecorder(100)
	c := rec.NewClient()
	rec.Add(c, regInput{Write: true, Value: true}, false, outcomeOK, 0, 10, opMeta{Node: "metasrv1", Status: "200"})
	rec.Add(c, regInput{Write: true, Value: false}, false, outcomeUnknown, 15, 18, opMeta{Node: "metasrv2", Status: "504 outcome_unknown"})
	rec.Add(rec.NewClient(), regInput{}, true, outcomeOK, 20, 30, opMeta{Node: "metasrv3", Status: "200"})
	rec.Add(c, regInput{}, false, outcomeOK, 40, 50, opMeta{Node: "metasrv3", Status: "200"})
	rec.Add(c, regInput{}, true, outcomeOK, 60, 70, opMeta{Node: "metasrv3", Status: "200"})
	lin := rec.Check(10 * time.Second)
	if lin.Result != porcupine.Illegal {
		t.Fatalf("got %s, want Illegal", lin.Result)
	}
	dir := t.TempDir()
	if err := lin.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"history.html", "history.txt"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Fatalf("%s not written: %v", f, err)
		}
	}
}
