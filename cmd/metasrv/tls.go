package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/metasrv/metasrv/server/certs"
)

// `metasrv tls` makes the certificates a cluster needs with a built-in CA,
// like `consul tls` and `cockroach cert`.

const (
	tlsExitRefused = 1 // file exists, bad name, missing CA, I/O error
	tlsExitUsage   = 2 // unknown subcommand, missing or bad flag
)

// Loopback names every node and datanode certificate carries, so that a
// local probe or a one-host cluster can dial it.
var tlsLoopback = []string{"localhost", "127.0.0.1", "::1"}

type tlsSubcommand struct {
	name, synopsis, about string
	check                 func(o *tlsOpts) error // the subcommand's own flags, after parsing; may be nil
	issue                 func(o *tlsOpts) ([]string, error)
}

// tlsOpts are the flags of one invocation.
type tlsOpts struct {
	dir, caCert, caKey string
	days               int
	force              bool
	name               string // --name (ca, client) or --node-id (node)
	role               string // --role of a client: admin or read
	id                 uint64
	hosts              hostList
	set                map[string]bool // flags given on the command line
	stderr             io.Writer
}

// tlsError is a failure with its exit status.
type tlsError struct {
	code int
	err  error
}

func (e *tlsError) Error() string { return e.err.Error() }

func tlsUsageError(format string, a ...any) error {
	return &tlsError{tlsExitUsage, fmt.Errorf(format, a...)}
}

func tlsRefused(format string, a ...any) error {
	return &tlsError{tlsExitRefused, fmt.Errorf(format, a...)}
}

var tlsSubcommands = []tlsSubcommand{
	{
		name:     "ca",
		synopsis: "metasrv tls ca [--dir DIR] [--days 3650] [--name CN] [--force]",
		about: `Makes a CA (a self-signed ECDSA P-256 certificate) and writes DIR/ca.crt and
DIR/ca.key. Every other subcommand signs with it. Keep ca.key off the nodes:
they need only ca.crt. A CA is valid for 3650 days unless --days says
otherwise. Its name (CN) carries the time it was made, so an old and a new
CA in one bundle (during a rotation) are told apart.`,
		issue: issueCA,
	},
	{
		name:     "node",
		synopsis: "metasrv tls node [--dir DIR] --node-id ID [--host NAME,IP,...] [--days 365] [--force]",
		about: `Issues a metasrv member's certificate, DIR/ID.crt and DIR/ID.key: role
(Organization) metasrv-node, CN the node id, for both server and client use
(the raft port and the API, each way). The hosts are its subject alternative
names: list every name and address other nodes and clients dial it by;
localhost, 127.0.0.1 and ::1 are always added. ID is what --node-id says.`,
		check: func(o *tlsOpts) error {
			if !o.set["node-id"] {
				return tlsUsageError("--node-id is required (see metasrv tls node --help)")
			}
			return checkNodeID(o.name)
		},
		issue: issueNode,
	},
	{
		name:     "datanode",
		synopsis: "metasrv tls datanode [--dir DIR] --id N [--host NAME,IP,...] [--days 365] [--force]",
		about: `Issues datanode N's certificate, DIR/datanode-N.crt and DIR/datanode-N.key:
role metasrv-datanode, CN datanode-N, for client use (its heartbeats) and
server use (its own /regions server). localhost, 127.0.0.1 and ::1 are
always added to the hosts.`,
		check: func(o *tlsOpts) error {
			if !o.set["id"] {
				return tlsUsageError("--id is required (see metasrv tls datanode --help)")
			}
			return nil
		},
		issue: issueDatanode,
	},
	{
		name:     "client",
		synopsis: "metasrv tls client [--dir DIR] --name NAME [--role admin|read] [--days 365] [--force]",
		about: `Issues an operator's or a tool's certificate, DIR/NAME.crt and DIR/NAME.key:
role metasrv-client, CN NAME, for client use only. NAME is letters, digits
and . _ @ - (at most 64, starting with a letter or digit). So that a client
is never mistaken for a node or a datanode in logs and audits, these names
are refused: ca; any name starting with datanode-; n followed by digits only
(n1, n2, ...: how node ids are usually spelled); and the node id of any node
certificate (role metasrv-node) already in DIR. --role read (the
certificate's OrganizationalUnit) makes a read-only operator; admin, the
default, may also write.`,
		check: func(o *tlsOpts) error {
			if !o.set["name"] {
				return tlsUsageError("--name is required (see metasrv tls client --help)")
			}
			if o.role != "admin" && o.role != "read" {
				return tlsUsageError("--role %q: want admin or read", o.role)
			}
			return nil
		},
		issue: issueClient,
	},
}

// tlsCommand runs `metasrv tls SUBCOMMAND [flags]`.
func tlsCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "metasrv tls: missing subcommand: ca, node, datanode or client (see metasrv tls --help)")
		return tlsExitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if args[0] == "help" && len(args) > 1 {
			if sub := findTLSSubcommand(args[1]); sub != nil {
				return runTLSSubcommand(sub, []string{"--help"}, stdout, stderr)
			}
			fmt.Fprintf(stderr, "metasrv tls: unknown subcommand %q (want ca, node, datanode or client)\n", args[1])
			return tlsExitUsage
		}
		tlsUsage(stdout)
		return 0
	}
	sub := findTLSSubcommand(args[0])
	if sub == nil {
		fmt.Fprintf(stderr, "metasrv tls: unknown subcommand %q (want ca, node, datanode or client; see metasrv tls --help)\n", args[0])
		return tlsExitUsage
	}
	return runTLSSubcommand(sub, args[1:], stdout, stderr)
}

func findTLSSubcommand(name string) *tlsSubcommand {
	for i := range tlsSubcommands {
		if tlsSubcommands[i].name == name {
			return &tlsSubcommands[i]
		}
	}
	return nil
}

func tlsUsage(out io.Writer) {
	fmt.Fprintf(out, "metasrv tls: make a CA and the certificates of nodes, datanodes and clients.\n\nUsage:\n")
	for _, s := range tlsSubcommands {
		fmt.Fprintf(out, "  %s\n", s.synopsis)
	}
	fmt.Fprint(out, `
Every certificate has an ECDSA P-256 key, signed by DIR/ca.crt and
DIR/ca.key (--ca-cert, --ca-key to take them from elsewhere); DIR is the
current directory unless --dir says otherwise, and is made if missing
(mode 0700 by metasrv tls ca, 0755 otherwise).
Keys are written with mode 0600, certificates 0644; an existing file is
never replaced without --force. On success the files written are printed,
one per line.

Exit status: 0 written; 1 refused (a file exists, a refused name, no CA, an
I/O error); 2 usage (unknown subcommand, a missing or bad flag).

Run metasrv tls SUBCOMMAND --help for its flags.
`)
}

func runTLSSubcommand(sub *tlsSubcommand, args []string, stdout, stderr io.Writer) int {
	o := &tlsOpts{stderr: stderr, set: map[string]bool{}}
	fs := flag.NewFlagSet("metasrv tls "+sub.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // errors are reported in one line; --help prints usage below
	fs.StringVar(&o.dir, "dir", ".", "directory the files are written to (made if missing)")
	days := 365
	if sub.name == "ca" {
		days = 3650
	}
	fs.IntVar(&o.days, "days", days, "days the certificate is valid (at most until the CA expires)")
	fs.BoolVar(&o.force, "force", false, "replace files that exist")
	switch sub.name {
	case "ca":
		fs.StringVar(&o.name, "name", "", `the CA's name (CN) (default "metasrv CA" and the time it is made)`)
	case "node":
		fs.StringVar(&o.name, "node-id", "", "the node's id, as its --node-id (required); letters, digits and . _ @ -")
		fs.Var(&o.hosts, "host", "host names and IP addresses the node is dialled by, comma-separated; may be repeated")
	case "datanode":
		fs.Var((*decimalID)(&o.id), "id", "the datanode's id, in decimal (required)")
		fs.Var(&o.hosts, "host", "host names and IP addresses the datanode's /regions server is dialled by, comma-separated; may be repeated")
	case "client":
		fs.StringVar(&o.name, "name", "", "the client's name (required); see above for the names refused")
		fs.StringVar(&o.role, "role", "admin", "admin (read and write) or read (read only)")
	}
	if sub.name != "ca" {
		fs.StringVar(&o.caCert, "ca-cert", "", "the CA's certificate (default DIR/ca.crt)")
		fs.StringVar(&o.caKey, "ca-key", "", "the CA's key (default DIR/ca.key)")
	}

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			tlsSubUsage(stdout, sub, fs)
			return 0
		}
		fmt.Fprintf(stderr, "metasrv tls: %v (see metasrv tls %s --help)\n", err, sub.name)
		return tlsExitUsage
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	err := func() error {
		if fs.NArg() > 0 {
			return tlsUsageError("unexpected argument %q (flags look like --name value)", fs.Arg(0))
		}
		if o.days < 1 || o.days > 36500 {
			return tlsUsageError("--days %d: want 1 to 36500", o.days)
		}
		if o.dir == "" {
			return tlsUsageError("--dir: must not be empty")
		}
		if sub.check != nil {
			if err := sub.check(o); err != nil {
				return err
			}
		}
		files, err := sub.issue(o)
		if err != nil {
			return err
		}
		for _, f := range files {
			fmt.Fprintln(stdout, f)
		}
		return nil
	}()
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "metasrv tls: %s\n", oneLine(err.Error()))
	if te, ok := err.(*tlsError); ok {
		return te.code
	}
	return tlsExitRefused
}

func tlsSubUsage(out io.Writer, sub *tlsSubcommand, fs *flag.FlagSet) {
	fmt.Fprintf(out, "Usage: %s\n\n%s\n\nFlags:\n", sub.synopsis, sub.about)
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(out, "  --%s\n        %s%s\n", f.Name, f.Usage, def)
	})
	fmt.Fprint(out, "\nExit status: 0 written; 1 refused; 2 usage (see metasrv tls --help).\n")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// decimalID is --id: decimal only (flag.Uint64 would read 012 as octal 10
// and 0x10 as 16, naming the wrong datanode).
type decimalID uint64

func (d *decimalID) String() string { return strconv.FormatUint(uint64(*d), 10) }

func (d *decimalID) Set(v string) error {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return errors.New("want a decimal number")
	}
	*d = decimalID(n)
	return nil
}

// hostList is --host: comma-separated, repeatable.
type hostList []string

func (h *hostList) String() string { return strings.Join(*h, ",") }

func (h *hostList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
			s = s[1 : len(s)-1] // [::1]
		}
		if ip := net.ParseIP(s); ip != nil {
			*h = append(*h, ip.String())
			continue
		}
		if !validDNSName(s) {
			return fmt.Errorf("%q is neither a host name nor an IP address (no ports or URLs)", s)
		}
		*h = append(*h, strings.ToLower(s))
	}
	return nil
}

var dnsLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// validDNSName accepts host names and a leading wildcard label (*.example).
func validDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for i, l := range labels {
		if i == 0 && l == "*" && len(labels) > 1 {
			continue
		}
		if !dnsLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// certName: also the file name, so it must be safe as one.
var certName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

var nodeLikeName = regexp.MustCompile(`^n[0-9]+$`)

func checkCommonName(what, name string) error {
	if !certName.MatchString(name) || strings.HasSuffix(name, ".") {
		return tlsRefused("%s %q: want at most 64 letters, digits and . _ @ -, starting with a letter or digit", what, name)
	}
	if name == "ca" {
		return tlsRefused("%s %q: that is the CA's file name", what, name)
	}
	if strings.HasPrefix(name, "datanode-") {
		return tlsRefused("%s %q: names starting with datanode- are datanodes' (metasrv tls datanode --id N)", what, name)
	}
	return nil
}

func checkNodeID(id string) error { return checkCommonName("--node-id", id) }

// checkClientName refuses names a reader could take for a node's or a
// datanode's (see the client subcommand's help).
func checkClientName(dir, name string) error {
	if err := checkCommonName("--name", name); err != nil {
		return err
	}
	if nodeLikeName.MatchString(name) {
		return tlsRefused("--name %q: looks like a node id (n followed by digits); pick another name", name)
	}
	if f, ok := nodeCertNamed(dir, name); ok {
		return tlsRefused("--name %q: %s is the certificate of node %s; pick another name", name, f, name)
	}
	return nil
}

// nodeCertNamed finds a node certificate in dir whose node id is name.
func nodeCertNamed(dir, name string) (string, bool) {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.crt"))
	for _, f := range matches {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, c := range parsePEMCerts(b) {
			if id := certs.IdentityOf(c); id.Role == certs.RoleNode && strings.EqualFold(id.Name, name) {
				return f, true
			}
		}
	}
	return "", false
}

func parsePEMCerts(b []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(blk.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

func issueCA(o *tlsOpts) ([]string, error) {
	name := o.name
	if name == "" {
		name = "metasrv CA " + time.Now().UTC().Format("2006-01-02T15:04:05Z")
	}
	ca, err := certs.NewAuthority(name, time.Duration(o.days)*24*time.Hour)
	if err != nil {
		return nil, tlsRefused("%v", err)
	}
	key, err := ca.KeyPEM()
	if err != nil {
		return nil, tlsRefused("%v", err)
	}
	return writeTLSFiles(o, "ca", ca.CertPEM(), key)
}

func issueNode(o *tlsOpts) ([]string, error) {
	return issueLeaf(o, o.name, certs.Request{Role: certs.RoleNode, Name: o.name, Hosts: withLoopback(o.hosts), Server: true, Client: true})
}

func issueDatanode(o *tlsOpts) ([]string, error) {
	n := certs.DatanodeName(o.id)
	return issueLeaf(o, n, certs.Request{Role: certs.RoleDatanode, Name: n, Hosts: withLoopback(o.hosts), Server: true, Client: true})
}

func issueClient(o *tlsOpts) ([]string, error) {
	if err := checkClientName(o.dir, o.name); err != nil {
		return nil, err
	}
	unit := ""
	if o.role == "read" {
		unit = "read"
	}
	return issueLeaf(o, o.name, certs.Request{Role: certs.RoleClient, Name: o.name, Unit: unit, Client: true})
}

func withLoopback(hosts []string) []string {
	out := slices.Clone(hosts)
	for _, h := range tlsLoopback {
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

func issueLeaf(o *tlsOpts, file string, r certs.Request) ([]string, error) {
	ca, err := loadTLSAuthority(o)
	if err != nil {
		return nil, err
	}
	r.Validity = time.Duration(o.days) * 24 * time.Hour
	// Refuse before making a key, so an existing file is named first.
	if !o.force {
		for _, f := range tlsFileNames(o.dir, file) {
			if _, err := os.Lstat(f); err == nil {
				return nil, tlsRefused("%s: %v (use --force to replace it)", f, certs.ErrExists)
			}
		}
	}
	certPEM, keyPEM, err := ca.Issue(r)
	if err != nil {
		return nil, tlsRefused("%v", err)
	}
	if clamped, until := ca.Clamped(r.Validity); clamped {
		fmt.Fprintf(o.stderr, "metasrv tls: warning: the CA expires %s; the certificate is valid until then only, not %d days\n",
			until.UTC().Format(time.RFC3339), o.days)
	}
	return writeTLSFiles(o, file, certPEM, keyPEM)
}

func loadTLSAuthority(o *tlsOpts) (*certs.Authority, error) {
	certFile, keyFile := o.caCert, o.caKey
	if certFile == "" {
		certFile = filepath.Join(o.dir, "ca.crt")
	}
	if keyFile == "" {
		keyFile = filepath.Join(o.dir, "ca.key")
	}
	ca, err := certs.LoadAuthority(certFile, keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, tlsRefused("no CA: %v (make one with metasrv tls ca --dir %s, or give --ca-cert and --ca-key)", err, o.dir)
	}
	if err != nil {
		return nil, tlsRefused("CA: %v", err)
	}
	if now := time.Now(); now.After(ca.Cert.NotAfter) {
		return nil, tlsRefused("CA %s expired on %s", certFile, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return ca, nil
}

func tlsFileNames(dir, base string) []string {
	return []string{filepath.Join(dir, base+".crt"), filepath.Join(dir, base+".key")}
}

func writeTLSFiles(o *tlsOpts, base string, certPEM, keyPEM []byte) ([]string, error) {
	// The CA's directory is private; one of leaves is shared (mounted into
	// nodes), and each key in it is 0600 anyway.
	mode := os.FileMode(0o755)
	if base == "ca" {
		mode = 0o700
	}
	if err := os.MkdirAll(o.dir, mode); err != nil {
		return nil, tlsRefused("%v", err)
	}
	names := tlsFileNames(o.dir, base)
	if err := certs.WriteFiles(names[0], certPEM, names[1], keyPEM, o.force); err != nil {
		return nil, tlsRefused("%v", err)
	}
	return names, nil
}
