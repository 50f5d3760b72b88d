package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWaitForProgressAndTimeout(t *testing.T) {
	for _, tc := range []struct {
		name     string
		terminal bool
		doneAt   int // the check reports done at this call (0: never)
		timeout  time.Duration
		code     int // exit code of the error, exitOK for none
		wantErr  string
	}{
		{"lines, done", false, 3, 10 * time.Second, exitOK, "2 left, lease held"},
		{"bar, done", true, 3, 10 * time.Second, exitOK, "drain 1"},
		{"lines, timed out", false, 0, 1200 * time.Millisecond, exitTimeout, "2 left, lease held"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errb bytes.Buffer
			a := &app{stdout: &bytes.Buffer{}, stderr: &errb, isTerminal: tc.terminal, output: "table"}
			calls := 0
			err := a.waitFor(context.Background(), "drain 1", tc.timeout, 2, func(context.Context) (int, string, bool, error) {
				calls++
				return 2, "lease held", calls == tc.doneAt, nil
			})
			code := exitOK
			var ee *exitErr
			if errors.As(err, &ee) {
				code = ee.code
			} else if err != nil {
				code = exitError
			}
			if code != tc.code {
				t.Fatalf("exit code %d (%v), want %d", code, err, tc.code)
			}
			if !strings.Contains(errb.String(), tc.wantErr) {
				t.Fatalf("progress %q lacks %q", errb.String(), tc.wantErr)
			}
			if !tc.terminal && strings.Count(errb.String(), "2 left") != 1 {
				t.Fatalf("plain progress repeats an unchanged line: %q", errb.String())
			}
		})
	}
}
