// Command datanode is the datanode agent: it heartbeats to the metasrv
// leader, opens and closes regions as told, and serves a region only while
// it holds a lease on it.
//
// Every flag can also be set from the environment: --id is DATANODE_ID.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/metasrv/metasrv/cmd/datanode/agent"
	"github.com/metasrv/metasrv/cmd/internal/cli"
)

var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "health" {
		return probe(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("datanode", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	id := fs.String("id", "", "this datanode's id, a positive integer (required unless --id-from-name)")
	idFromName := fs.String("id-from-name", "", "derive the id from a name ending in -N (a StatefulSet pod name): id = N+1")
	addr := fs.String("addr", "127.0.0.1:4001", "HTTP listen address; also the address reported to metasrv")
	advertise := fs.String("advertise-addr", "", "address reported to metasrv (default --addr)")
	metasrv := fs.String("metasrv", "127.0.0.1:3002", "metasrv RPC addresses, comma-separated (any members; the leader is found automatically)")
	dataDir := fs.String("data-dir", "", "remember the open regions here across restarts (optional)")
	logLevel := fs.String("log-level", "info", "trace, debug, info, warn or error")
	logJSON := fs.Bool("log-json", false, "log as JSON lines")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := cli.ApplyEnv(fs, "DATANODE_", "version"); err != nil {
		fmt.Fprintf(stderr, "datanode: %v\n", err)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, fs)
			return 0
		}
		fmt.Fprintf(stderr, "datanode: %v (see datanode --help)\n", err)
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "datanode %s\n", version)
		return 0
	}
	if *id == "" && *idFromName != "" {
		i := strings.LastIndex(*idFromName, "-")
		ord, err := strconv.ParseUint((*idFromName)[i+1:], 10, 63)
		if i < 0 || err != nil {
			fmt.Fprintf(stderr, "datanode: --id-from-name %q: want a name ending in -N\n", *idFromName)
			return 2
		}
		*id = strconv.FormatUint(ord+1, 10)
	}
	n, err := strconv.ParseUint(*id, 10, 64)
	if err != nil || n == 0 {
		fmt.Fprintf(stderr, "datanode: --id %q: want a positive integer\n", *id)
		return 2
	}
	if *advertise == "" {
		*advertise = *addr
	}
	if _, _, err := net.SplitHostPort(*advertise); err != nil {
		fmt.Fprintf(stderr, "datanode: --advertise-addr %q: want HOST:PORT\n", *advertise)
		return 2
	}
	var metas []string
	for _, m := range strings.Split(*metasrv, ",") {
		if m = strings.TrimSpace(m); m != "" {
			if _, _, err := net.SplitHostPort(m); err != nil {
				fmt.Fprintf(stderr, "datanode: --metasrv %q: want HOST:PORT\n", m)
				return 2
			}
			metas = append(metas, m)
		}
	}
	if len(metas) == 0 {
		fmt.Fprintln(stderr, "datanode: --metasrv is required")
		return 2
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "datanode", Level: hclog.LevelFromString(*logLevel), JSONFormat: *logJSON,
		Output: stderr, TimeFormat: "2006-01-02T15:04:05.000Z07:00"})
	a, err := agent.New(agent.Config{ID: n, Addr: *advertise, Metasrv: metas, DataDir: *dataDir, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "datanode: %v\n", err)
		return 1
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "datanode: listen on --addr %s: %v\n", *addr, err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /regions", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a.Serving())
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("OK"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	go func() { _ = srv.Serve(ln) }()
	log.Info("datanode started", "id", n, "addr", *advertise, "metasrv", metas)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	s := <-sigs
	log.Info("shutting down", "signal", s.String())
	cancel()
	<-done
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	return 0
}

func usage(out io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(out, "datanode: a datanode agent that heartbeats to metasrv and serves leased regions.\n\nUsage:\n  datanode --id N --metasrv ADDR[,ADDR...] [flags]\n  datanode health [--addr HOST:PORT]\n\nFlags (each also from the environment, e.g. --id as DATANODE_ID):\n")
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(out, "  --%s\n        %s (default %q) [%s]\n", f.Name, f.Usage, f.DefValue, cli.EnvName("DATANODE_", f.Name))
	})
}

// probe is the container health check: exit 0 if /health answers OK.
func probe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("datanode health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", cli.EnvOr("DATANODE_ADDR", "127.0.0.1:4001"), "datanode HTTP address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	host := cli.LocalAddr(*addr)
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + host + "/health")
	if err != nil {
		fmt.Fprintf(stderr, "datanode health: %v\n", err)
		return 1
	}
	resp.Body.Close()
	fmt.Fprintln(stdout, resp.Status)
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}
