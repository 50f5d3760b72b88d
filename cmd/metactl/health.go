package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/metasrv/metasrv/server/health"
	"github.com/metasrv/metasrv/server/wire"
)

func (a *app) healthCmd() *cobra.Command {
	return &cobra.Command{Use: "health", Short: "The health report: each indicator green, yellow or red, what it means and what to do (exit 3 when red)",
		Args: noArgs, RunE: func(cmd *cobra.Command, _ []string) error { return a.health(cmd.Context()) }}
}

func (a *app) health(ctx context.Context) error {
	var r wire.HealthReport
	body, err := a.cl.getJSON(ctx, "/admin/health/report", nil, &r)
	if err != nil {
		return err
	}
	if a.output == "json" {
		printJSON(a.stdout, body)
	} else {
		printHealth(a.stdout, r, a.isTerminal)
	}
	if r.Status == wire.HealthRed {
		return withCode(exitNotReady, errors.New("health: red"))
	}
	return nil
}

// printHealth writes the report: the overall status, one row per
// indicator, then the impacts and actions of those that are not green.
func printHealth(w io.Writer, r wire.HealthReport, color bool) {
	fmt.Fprintf(w, "health: %s\n\n", paint(r.Status, color))
	names := append([]string{}, health.Names...)
	for name := range r.Indicators { // any the server added since
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	t := newTable(w, "INDICATOR", "STATUS", "SYMPTOM")
	for _, name := range names {
		if ind, ok := r.Indicators[name]; ok {
			// Colour codes would break the column widths: the table stays plain.
			t.row(name, ind.Status, ind.Symptom)
		}
	}
	t.flush()
	for _, name := range names {
		ind, ok := r.Indicators[name]
		if !ok || ind.Status == wire.HealthGreen {
			continue
		}
		fmt.Fprintf(w, "\n%s is %s: %s\n", name, paint(ind.Status, color), ind.Symptom)
		for _, s := range ind.Impacts {
			fmt.Fprintf(w, "  impact: %s\n", s)
		}
		for _, s := range ind.Actions {
			fmt.Fprintf(w, "  action: %s\n", s)
		}
	}
}

func paint(status string, color bool) string {
	if !color {
		return status
	}
	code := map[string]string{wire.HealthGreen: "32", wire.HealthYellow: "33", wire.HealthRed: "31"}[status]
	if code == "" {
		return status
	}
	return "\x1b[" + code + "m" + status + "\x1b[0m"
}
