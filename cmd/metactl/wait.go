package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// pollEvery is how often a --wait looks again.
const pollEvery = 500 * time.Millisecond

// progress shows how many items are left: a bar on a terminal, lines
// otherwise (one each time something changes).
type progress struct {
	w     io.Writer
	what  string
	total int
	bar   *progressbar.ProgressBar
	last  string
}

func (a *app) newProgress(what string, total int) *progress {
	p := &progress{w: a.stderr, what: what, total: total}
	if a.isTerminal && a.output == "table" {
		p.bar = progressbar.NewOptions(max(total, 1), progressbar.OptionSetWriter(a.stderr),
			progressbar.OptionSetDescription(what), progressbar.OptionShowCount(),
			progressbar.OptionSetElapsedTime(true), progressbar.OptionClearOnFinish())
	}
	return p
}

// update reports left items and a note on what else is awaited.
func (p *progress) update(left int, note string) {
	if p.bar != nil {
		if left > p.total {
			p.total = left
			p.bar.ChangeMax(left)
		}
		_ = p.bar.Set(p.total - left)
		p.bar.Describe(fmt.Sprintf("%s (%s)", p.what, note))
		return
	}
	line := fmt.Sprintf("%s: %d left, %s", p.what, left, note)
	if line != p.last {
		fmt.Fprintf(p.w, "%s %s\n", time.Now().UTC().Format("15:04:05"), line)
		p.last = line
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// waitFor polls check until it reports done, the timeout runs out (exit
// 4) or the context ends. check answers how many items are left and a
// note; a failed check is reported and retried until the timeout.
func (a *app) waitFor(ctx context.Context, what string, timeout time.Duration, total int,
	check func(ctx context.Context) (left int, note string, done bool, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p := a.newProgress(what, total)
	defer p.finish()
	var lastErr error
	lastNote := ""
	for {
		left, note, done, err := check(ctx)
		switch {
		case err == nil && done:
			p.update(0, "done")
			return nil
		case err == nil:
			p.update(left, note)
			lastNote = fmt.Sprintf("%d left, %s", left, note)
		default:
			lastErr = err
			var ae *apiError
			if errors.As(err, &ae) && ae.Status < 500 {
				return err // the question itself is wrong: no point waiting
			}
		}
		t := time.NewTimer(pollEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				why := lastNote
				if lastErr != nil && why == "" {
					why = lastErr.Error()
				}
				return withCode(exitTimeout, fmt.Errorf("%s: not done within --timeout %s (%s)", what, timeout, why))
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}
