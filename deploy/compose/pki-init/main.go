// Command pki-init is the one-shot certificate service of the Compose
// cluster (deploy/compose): the image has no shell, so this small program
// runs `metasrv tls` for each certificate that is missing and copies the
// CA's certificate next to the leaves. It is idempotent: files that exist
// are kept, so a second run changes nothing.
//
//	pki-init --ca-dir /data --dir /certs --client-dir /data/clients \
//	  --node n1=metasrv1 --datanode 1=datanode1 --client operator
//
// The CA (ca.crt, ca.key) and the client certificates stay in --ca-dir and
// --client-dir, which only this service mounts; --dir gets ca.crt and the
// node and datanode certificates, and is mounted read-only into the nodes.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// list is a repeatable, comma-separated flag.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }

func (l *list) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pki-init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	metasrv := fs.String("metasrv", "/metasrv", "the metasrv binary (its tls subcommand issues everything)")
	caDir := fs.String("ca-dir", "/data", "where the CA lives (ca.crt, ca.key); made if missing")
	dir := fs.String("dir", "/certs", "where ca.crt and the node and datanode certificates go")
	clientDir := fs.String("client-dir", "", "where client certificates go (default --ca-dir)")
	days := fs.Int("days", 365, "validity of the certificates issued")
	var nodes, datanodes, clients list
	fs.Var(&nodes, "node", "ID=HOST[+HOST...]: a metasrv member's certificate (CN ID, SANs the hosts and loopback); repeatable")
	fs.Var(&datanodes, "datanode", "N=HOST[+HOST...]: datanode N's certificate; repeatable")
	fs.Var(&clients, "client", "NAME: an operator's client certificate; repeatable")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *clientDir == "" {
		*clientDir = *caDir
	}
	caCert, caKey := filepath.Join(*caDir, "ca.crt"), filepath.Join(*caDir, "ca.key")
	tls := func(sub string, outDir, base string, extra ...string) error {
		if exists(filepath.Join(outDir, base+".crt")) && exists(filepath.Join(outDir, base+".key")) {
			fmt.Fprintf(stdout, "kept %s\n", filepath.Join(outDir, base+".crt"))
			return nil
		}
		args := []string{"tls", sub, "--dir", outDir}
		if sub != "ca" {
			args = append(args, "--ca-cert", caCert, "--ca-key", caKey, "--days", fmt.Sprint(*days))
		}
		cmd := exec.Command(*metasrv, append(args, extra...)...)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s %s: %v", *metasrv, strings.Join(cmd.Args[1:], " "), err)
		}
		return nil
	}
	err := func() error {
		if err := tls("ca", *caDir, "ca"); err != nil {
			return err
		}
		for _, n := range nodes {
			id, hosts, ok := strings.Cut(n, "=")
			if !ok || id == "" {
				return fmt.Errorf("--node %q: want ID=HOST[+HOST...]", n)
			}
			if err := tls("node", *dir, id, "--node-id", id, "--host", strings.ReplaceAll(hosts, "+", ",")); err != nil {
				return err
			}
		}
		for _, d := range datanodes {
			id, hosts, ok := strings.Cut(d, "=")
			if !ok || id == "" {
				return fmt.Errorf("--datanode %q: want N=HOST[+HOST...]", d)
			}
			if err := tls("datanode", *dir, "datanode-"+id, "--id", id, "--host", strings.ReplaceAll(hosts, "+", ",")); err != nil {
				return err
			}
		}
		for _, c := range clients {
			if err := tls("client", *clientDir, c, "--name", c); err != nil {
				return err
			}
		}
		return copyIfChanged(caCert, filepath.Join(*dir, "ca.crt"), stdout)
	}()
	if err != nil {
		fmt.Fprintf(stderr, "pki-init: %v\n", err)
		return 1
	}
	return 0
}

func exists(f string) bool {
	_, err := os.Stat(f)
	return err == nil
}

// copyIfChanged copies the CA's certificate (never its key) through a
// temporary file and a rename, so a node reloading it never sees half.
func copyIfChanged(from, to string, stdout io.Writer) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(to); err == nil && bytes.Equal(old, b) {
		fmt.Fprintf(stdout, "kept %s\n", to)
		return nil
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, to); err != nil {
		return err
	}
	fmt.Fprintln(stdout, to)
	return nil
}
