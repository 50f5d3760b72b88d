// Command datanode is the datanode agent: it heartbeats to the metasrv
// leader, opens and closes regions as told, and serves a region only while
// it holds a lease on it.
//
// Every flag can also be set from the environment: --id is DATANODE_ID.
package main

import (
	"context"
	"crypto/tls"
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
	"github.com/metasrv/metasrv/server/certs"
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
	metasrvCA := fs.String("metasrv-ca-file", "", "CA (bundle) that signs metasrv's API certificates: heartbeats go over HTTPS, verified")
	certFile := fs.String("cert-file", "", "this datanode's certificate (role metasrv-datanode, CN datanode-<id>): presented to metasrv, and served by /regions and /health (HTTPS)")
	keyFile := fs.String("key-file", "", "key of --cert-file")
	tokenFile := fs.String("token-file", "", "file holding this datanode's secret alone on a line (metasrv's --datanode-token-file names it datanode-<id>); sent with every heartbeat; re-read on SIGHUP")
	insecure := fs.Bool("insecure", false, "allow plaintext on a non-loopback --addr or towards a non-loopback --metasrv")
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
	src, err := datanodeTLS(*metasrvCA, *certFile, *keyFile, n)
	if err != nil {
		fmt.Fprintf(stderr, "datanode: %v\n", err)
		return 2
	}
	if err := checkPlaintext(*addr, metas, src, *insecure); err != nil {
		fmt.Fprintf(stderr, "datanode: %v\n", err)
		return 2
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "datanode", Level: hclog.LevelFromString(*logLevel), JSONFormat: *logJSON,
		Output: stderr, TimeFormat: "2006-01-02T15:04:05.000Z07:00"})
	var metasrvTLS *certs.Source
	if *metasrvCA != "" {
		metasrvTLS = src
	}
	a, err := agent.New(agent.Config{ID: n, Addr: *advertise, Metasrv: metas, DataDir: *dataDir, Logger: log, TLS: metasrvTLS, TokenFile: *tokenFile})
	if err != nil {
		fmt.Fprintf(stderr, "datanode: %v\n", err)
		return 1
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "datanode: listen on --addr %s: %v\n", *addr, err)
		return 1
	}
	if src != nil && src.HasCert() {
		ln = tls.NewListener(ln, src.ServerConfig(tls.VersionTLS12, false, nil))
	}
	mux := datanodeMux(a)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	go func() { _ = srv.Serve(ln) }()
	log.Info("datanode started", "id", n, "addr", *advertise, "metasrv", metas)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	report := func(changed bool, err error) {
		if err != nil {
			log.Error("certificate reload failed; keeping the previous files' content", "error", err)
		} else if changed {
			log.Info("certificates reloaded")
		}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			if src != nil {
				report(src.Reload())
			}
			if err := a.ReloadToken(); err != nil {
				log.Error("token file reload failed; keeping the previous secret", "error", err)
			}
		}
	}()
	if src != nil {
		go src.Watch(ctx, 30*time.Second, report)
	}
	s := <-sigs
	log.Info("shutting down", "signal", s.String())
	cancel()
	<-done
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	return 0
}

// datanodeTLS loads the datanode's certificate files, if any.
func datanodeTLS(caFile, certFile, keyFile string, id uint64) (*certs.Source, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile != "" && caFile == "" {
		return nil, fmt.Errorf("--cert-file needs --metasrv-ca-file (a certificate is presented only over verified HTTPS)")
	}
	f := certs.Files{Cert: certFile, Key: keyFile}
	if caFile != "" {
		f.CA = []string{caFile}
	}
	src, err := certs.Load(f)
	if err != nil {
		return nil, err
	}
	if leaf := src.Leaf(); leaf != nil {
		if got, want := certs.IdentityOf(leaf), (certs.Identity{Role: certs.RoleDatanode, Name: certs.DatanodeName(id)}); got != want {
			return nil, fmt.Errorf("--cert-file %s is for %s; datanode %d needs %s", certFile, got, id, want)
		}
	}
	return src, nil
}

// checkPlaintext refuses plaintext off loopback unless --insecure.
func checkPlaintext(addr string, metas []string, src *certs.Source, insecure bool) error {
	if insecure {
		return nil
	}
	if (src == nil || !src.HasCert()) && !certs.LoopbackAddr(addr) {
		return fmt.Errorf("refusing plaintext off loopback: --addr %s is not loopback; set --cert-file and --key-file, or --insecure", addr)
	}
	if src == nil || len(src.Files().CA) == 0 {
		for _, m := range metas {
			if !certs.LoopbackAddr(m) {
				return fmt.Errorf("refusing plaintext off loopback: --metasrv %s is not loopback; set --metasrv-ca-file, or --insecure", m)
			}
		}
	}
	return nil
}

// datanodeMux serves the datanode's own routes: the regions it serves, its
// incarnation (asked by the leader to check a fleet credential's claim),
// and the container health check.
func datanodeMux(a *agent.Agent) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /regions", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a.Serving())
	})
	mux.HandleFunc("GET /incarnation", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a.Incarnation())
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("OK"))
	})
	return mux
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
	scheme := "http://"
	// With its own certificate the datanode serves HTTPS; verify it with
	// the cluster CA it trusts for metasrv.
	if os.Getenv("DATANODE_CERT_FILE") != "" {
		src, err := certs.Load(certs.Files{CA: []string{os.Getenv("DATANODE_METASRV_CA_FILE")}})
		if err != nil {
			fmt.Fprintf(stderr, "datanode health: DATANODE_CERT_FILE is set: %v\n", err)
			return 2
		}
		scheme = "https://"
		c.Transport = src.Transport(3 * time.Second)
	}
	resp, err := c.Get(scheme + host + "/health")
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
