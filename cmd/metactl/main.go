// Command metactl is the operator's command line for a metasrv cluster:
// status, maintenance (with its preflight), datanodes, regions, members
// and the event log, over the HTTP API.
//
// Exit codes: 0 ok, 1 error, 2 usage, 3 not ready (a guarded maintenance
// disable was refused), 4 a --wait timed out.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitNotReady = 3
	exitTimeout  = 4
)

// exitErr carries an exit code with its message.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string { return e.err.Error() }
func (e *exitErr) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &exitErr{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func withCode(code int, err error) error { return &exitErr{code: code, err: err} }

// app is one invocation: its flags, output and client.
type app struct {
	endpoints, tokenFile string
	caCert, cert, key    string
	output               string
	timeout              time.Duration

	stdout, stderr io.Writer
	// isTerminal says whether stderr is a terminal (progress bars).
	isTerminal bool
	cl         *client
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "metactl",
		Short:         "Operate a metasrv cluster over its HTTP API",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE:          func(cmd *cobra.Command, args []string) error { return cmd.Help() },
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.output != "table" && a.output != "json" {
				return usagef("-o %q: want table or json", a.output)
			}
			if a.timeout <= 0 {
				return usagef("--request-timeout %s: must be positive", a.timeout)
			}
			cl, err := newClient(clientOptions{endpoints: a.endpoints, tokenFile: a.tokenFile,
				caCert: a.caCert, cert: a.cert, key: a.key, timeout: a.timeout})
			if err != nil {
				return err
			}
			a.cl = cl
			return nil
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usagef("%v", err) })
	pf := root.PersistentFlags()
	pf.StringVar(&a.endpoints, "endpoints", envOr("METACTL_ENDPOINTS", "127.0.0.1:3002"),
		"metasrv API addresses, comma-separated, tried in turn (env METACTL_ENDPOINTS)")
	pf.StringVar(&a.tokenFile, "token-file", envOr("METACTL_TOKEN_FILE", ""),
		"file holding the API token alone on a line, sent as Bearer (env METACTL_TOKEN_FILE)")
	pf.StringVar(&a.caCert, "cacert", envOr("METACTL_CACERT", ""), "CA certificate to verify the API's (HTTPS) (env METACTL_CACERT)")
	pf.StringVar(&a.cert, "cert", envOr("METACTL_CERT", ""), "client certificate (HTTPS) (env METACTL_CERT)")
	pf.StringVar(&a.key, "key", envOr("METACTL_KEY", ""), "client certificate's key (HTTPS) (env METACTL_KEY)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table or json (the API's own bodies)")
	pf.DurationVar(&a.timeout, "request-timeout", requestTimeout, "bound on one request to one endpoint")

	root.AddCommand(a.statusCmd(), a.healthCmd(), a.maintenanceCmd(), a.datanodeCmd(), a.regionCmd(), a.memberCmd(), a.eventsCmd(), a.rollCmd())
	return root
}

// noArgs refuses positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if !cmd.HasParent() {
			return usagef("unknown command %q", args[0])
		}
		return usagef("%s: unexpected argument %q", cmdPath(cmd), args[0])
	}
	return nil
}

// exactArgs wants n positional arguments, named in the message.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usagef("%s: want %s, got %d arguments", cmdPath(cmd), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// cmdPath is a command's path without the program name.
func cmdPath(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

// group is a command with subcommands only.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	g := &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var names []string
			for _, s := range cmd.Commands() {
				names = append(names, s.Name())
			}
			if len(args) > 0 {
				return usagef("%s: unknown command %q; want one of: %s", cmdPath(cmd), args[0], strings.Join(names, ", "))
			}
			return usagef("%s: want a command: %s", cmdPath(cmd), strings.Join(names, ", "))
		}}
	g.AddCommand(subs...)
	return g
}

// run executes metactl with args and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, isTerminal bool) int {
	a := &app{stdout: stdout, stderr: stderr, isTerminal: isTerminal}
	root := a.rootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitError
	var ee *exitErr
	if errors.As(err, &ee) {
		code = ee.code
	} else if strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") {
		code = exitUsage
	}
	fmt.Fprintf(stderr, "metactl: %s\n", oneLine(err.Error()))
	if code == exitUsage {
		fmt.Fprintln(stderr, "run 'metactl --help' for usage")
	}
	return code
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, isTerminal(os.Stderr))
	stop()
	os.Exit(code)
}
