// Package localcluster starts real metasrv processes on loopback for
// end-to-end tests and benchmarks. Each cluster gets its own random
// 127.x.y.z addresses, so clusters never collide with each other or with
// `make run` (which uses 127.0.0.1:3002 and friends).
package localcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Ports every node uses on its own loopback address.
const (
	RPCPort  = 17002
	RaftPort = 17003
	// DatanodePort is the HTTP port of every datanode, each on its own
	// loopback host of the cluster's prefix (127.a.b.101, .102, ...).
	DatanodePort = 17004
)

// Options configures a cluster.
type Options struct {
	Bin   string // metasrv binary
	Nodes int    // initial members, default 3
	Dir   string // data and logs go under it
	// Args are extra flags for every node (e.g. short raft timeouts).
	Args []string
	// Env is extra environment for every node (and datanode).
	Env []string

	// DatanodeBin is the datanode binary; needed only for datanodes.
	DatanodeBin string
	// Datanodes is how many datanodes (ids 1..N) Start launches after the
	// metasrv nodes; 0 for none. More can be added with AddDatanode.
	Datanodes int
	// DatanodeArgs are extra flags for every datanode.
	DatanodeArgs []string
	// TLS runs the cluster as production does: a CA and certificates
	// under Dir/certs, mutual TLS on the raft port, HTTPS with
	// --client-cert-auth, datanodes with certificates, and a Client that
	// presents an operator certificate.
	TLS bool
}

// Cluster is a set of metasrv processes.
type Cluster struct {
	opts   Options
	prefix [3]byte // 127.a.b.x
	mu     sync.Mutex
	nodes  []*Node
	dns    []*Datanode
	Client *http.Client
	// PKI is the cluster's certificates when Options.TLS is set.
	PKI *PKI
}

// Node is one metasrv process (running or not).
type Node struct {
	ID       string
	Host     string
	RPCAddr  string
	RaftAddr string
	DataDir  string
	LogPath  string
	Args     []string // full argument list used by Start

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	env    []string
	bin    string
	scheme string // of URL: http:// or https://
	// stripEnv lists prefixes of inherited environment variables the
	// process must not see (a reference system's own config variables).
	stripEnv []string
}

// NewProcess returns a handle with the same start/stop/kill machinery for
// any program, e.g. a reference system a benchmark runs beside metasrv.
// Inherited environment variables starting with one of stripEnv are not
// passed on.
func NewProcess(id, bin, logPath string, args []string, stripEnv ...string) *Node {
	return &Node{ID: id, bin: bin, LogPath: logPath, Args: args, stripEnv: stripEnv}
}

// Start launches a new cluster of opts.Nodes members that bootstrap from
// the same --peers list. It does not wait for a leader.
func Start(opts Options) (*Cluster, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	c := &Cluster{opts: opts, Client: &http.Client{Timeout: 15 * time.Second}}
	if err := c.pickPrefix(); err != nil {
		return nil, err
	}
	if opts.TLS {
		var err error
		if c.PKI, err = newPKI(filepath.Join(opts.Dir, "certs")); err != nil {
			return nil, fmt.Errorf("certificates: %w", err)
		}
		c.Client.Transport = c.PKI.clientTransport()
	}
	var peers []string
	for i := 1; i <= opts.Nodes; i++ {
		n := c.newNode(i)
		c.nodes = append(c.nodes, n)
		peers = append(peers, n.ID+"="+n.RaftAddr)
	}
	for _, n := range c.nodes {
		n.Args = append(n.baseArgs(), "--peers", strings.Join(peers, ","))
		if err := c.addTLS(n); err != nil {
			return nil, err
		}
		n.Args = append(n.Args, opts.Args...)
		if err := n.Start(); err != nil {
			c.Close()
			return nil, err
		}
	}
	for i := 0; i < opts.Datanodes; i++ {
		if err := c.AddDatanode().Start(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// pickPrefix chooses a random 127.a.b.0/24 whose ports are free.
func (c *Cluster) pickPrefix() error {
	for try := 0; try < 50; try++ {
		c.prefix = [3]byte{127, byte(1 + rand.IntN(254)), byte(1 + rand.IntN(254))}
		ok := true
		for i := 1; i <= c.opts.Nodes+2 && ok; i++ {
			for _, p := range []int{RPCPort, RaftPort} {
				ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", c.host(i), p))
				if err != nil {
					ok = false
					break
				}
				ln.Close()
			}
		}
		for i := 1; i <= c.opts.Datanodes+1 && ok; i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", c.datanodeHost(i), DatanodePort))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return nil
		}
	}
	return errors.New("localcluster: no free loopback address found")
}

func (c *Cluster) host(i int) string {
	return fmt.Sprintf("%d.%d.%d.%d", c.prefix[0], c.prefix[1], c.prefix[2], 10+i)
}

func (c *Cluster) newNode(i int) *Node {
	host := c.host(i)
	n := &Node{
		ID: fmt.Sprintf("n%d", i), Host: host,
		RPCAddr:  fmt.Sprintf("%s:%d", host, RPCPort),
		RaftAddr: fmt.Sprintf("%s:%d", host, RaftPort),
		env:      c.opts.Env, bin: c.opts.Bin, scheme: c.scheme(),
	}
	n.DataDir = filepath.Join(c.opts.Dir, n.ID)
	n.LogPath = filepath.Join(c.opts.Dir, n.ID+".log")
	return n
}

// addTLS gives a TLS cluster's node its certificate flags and environment.
func (c *Cluster) addTLS(n *Node) error {
	if c.PKI == nil {
		return nil
	}
	args, err := c.nodeTLSArgs(n)
	if err != nil {
		return fmt.Errorf("%s certificate: %w", n.ID, err)
	}
	n.Args = append(n.Args, args...)
	n.env = append(append([]string(nil), n.env...), c.nodeTLSEnv(n)...)
	return nil
}

func (n *Node) baseArgs() []string {
	return []string{"--node-id", n.ID, "--rpc-addr", n.RPCAddr, "--raft-addr", n.RaftAddr,
		"--data-dir", n.DataDir, "--log-level", "debug"}
}

// AddNode prepares (but does not start) one more node that joins through
// the given members' RPC addresses.
func (c *Cluster) AddNode(joinVia ...string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.newNode(len(c.nodes) + 1)
	n.Args = append(n.baseArgs(), "--join", strings.Join(joinVia, ","))
	if err := c.addTLS(n); err != nil {
		panic(err) // only the test's temporary directory can fail here
	}
	n.Args = append(n.Args, c.opts.Args...)
	c.nodes = append(c.nodes, n)
	return n
}

// Nodes returns every node, running or not.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Node(nil), c.nodes...)
}

// Node returns the node with the given id, or nil.
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.Nodes() {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Running returns the nodes whose process is alive (paused ones included).
func (c *Cluster) Running() []*Node {
	var out []*Node
	for _, n := range c.Nodes() {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// Close kills every process, datanodes first (SIGCONT first, in case one
// is paused).
func (c *Cluster) Close() {
	for _, d := range c.Datanodes() {
		d.Kill()
	}
	for _, n := range c.Nodes() {
		n.Kill()
	}
}

// Start launches the node's process with its Args. Its log is appended to
// LogPath.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("%s already running", n.ID)
	}
	if err := os.MkdirAll(filepath.Dir(n.LogPath), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== start %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(n.Args, " "))
	cmd := exec.Command(n.bin, n.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(inheritedEnv(n.stripEnv), n.env...)
	// Own process group, and die with the test process if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", n.ID, err)
	}
	n.cmd = cmd
	exited := make(chan struct{})
	n.exited = exited
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	return nil
}

// Running reports whether the process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

func (n *Node) signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return fmt.Errorf("%s is not running", n.ID)
	}
	return n.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (n *Node) Kill() {
	_ = n.signal(syscall.SIGCONT)
	_ = n.signal(syscall.SIGKILL)
	n.wait(10 * time.Second)
}

// Stop sends SIGTERM and waits up to timeout for a clean exit; it returns
// the exit error (nil for exit 0) and kills the process if it hangs.
func (n *Node) Stop(timeout time.Duration) error {
	if err := n.signal(syscall.SIGTERM); err != nil {
		return err
	}
	if !n.wait(timeout) {
		n.Kill()
		return fmt.Errorf("%s did not exit within %s after SIGTERM", n.ID, timeout)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return exitErr(n.cmd)
}

func exitErr(cmd *exec.Cmd) error {
	if cmd == nil || cmd.ProcessState == nil {
		return nil
	}
	if !cmd.ProcessState.Success() {
		return fmt.Errorf("exit: %s", cmd.ProcessState)
	}
	return nil
}

// wait waits for the process to exit and forgets it, so Start can run it
// again. It returns false on timeout.
func (n *Node) wait(timeout time.Duration) bool {
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	if exited == nil {
		return true
	}
	select {
	case <-exited:
	case <-time.After(timeout):
		return false
	}
	n.mu.Lock()
	n.cmd = nil
	n.mu.Unlock()
	return true
}

// Pause freezes the process (SIGSTOP); Resume thaws it (SIGCONT).
func (n *Node) Pause() error  { return n.signal(syscall.SIGSTOP) }
func (n *Node) Resume() error { return n.signal(syscall.SIGCONT) }

// URL returns the node's base URL plus path.
func (n *Node) URL(path string) string {
	if n.scheme == "" {
		return "http://" + n.RPCAddr + path
	}
	return n.scheme + n.RPCAddr + path
}

func (c *Cluster) scheme() string {
	if c.opts.TLS {
		return "https://"
	}
	return "http://"
}

// Reload sends SIGHUP: the node re-reads its certificate files.
func (n *Node) Reload() error { return n.signal(syscall.SIGHUP) }

// Do sends a request to the node and returns status and body.
func (c *Cluster) Do(ctx context.Context, method, url string, body []byte, headers ...string) (int, []byte, error) {
	r, err := c.send(ctx, method, url, body, headers)
	return r.Code, r.Body, err
}

// Reply is one HTTP answer.
type Reply struct {
	Code   int
	Header http.Header
	Body   []byte
}

// String is the status code and the body without surrounding space.
func (r Reply) String() string { return fmt.Sprintf("%d %s", r.Code, bytes.TrimSpace(r.Body)) }

// Request sends one request with c.Client, bounded by timeout (0: the
// client's own Timeout, if any). headers are name, value pairs.
func (c *Cluster) Request(timeout time.Duration, method, url string, body []byte, headers ...string) (Reply, error) {
	if timeout == 0 {
		timeout = c.Client.Timeout
	}
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return c.send(ctx, method, url, body, headers)
}

// SendJSON sends one request to url, bounded by Client.Timeout; a body
// that is not empty is sent as application/json.
func (c *Cluster) SendJSON(method, url, body string) (Reply, error) {
	var hdrs []string
	if body != "" {
		hdrs = []string{"Content-Type", "application/json"}
	}
	return c.Request(0, method, url, []byte(body), hdrs...)
}

// send does the request of Do and Request; on a failed read it returns
// what it read with the error.
func (c *Cluster) send(ctx context.Context, method, url string, body []byte, headers []string) (Reply, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return Reply{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Client.Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return Reply{Code: resp.StatusCode, Header: resp.Header, Body: b}, err
}

// Status asks one node for its raft status (short timeout).
func (c *Cluster) Status(n *Node) (RaftStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var st RaftStatus
	code, body, err := c.Do(ctx, http.MethodGet, n.URL("/admin/raft"), nil)
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("%s: status %d", n.ID, code)
	}
	return st, json.Unmarshal(body, &st)
}

// WaitLeader waits until a running, unpaused node says it is the leader
// and every node in among agrees on it (all running nodes when among is
// empty). It returns that leader.
func (c *Cluster) WaitLeader(timeout time.Duration, among ...*Node) (*Node, error) {
	if len(among) == 0 {
		among = c.Running()
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		leaderID := ""
		agreed := true
		for _, n := range among {
			st, err := c.Status(n)
			if err != nil {
				last, agreed = err, false
				break
			}
			if st.LeaderID == "" || (leaderID != "" && st.LeaderID != leaderID) {
				last, agreed = fmt.Errorf("%s sees leader %q", n.ID, st.LeaderID), false
				break
			}
			leaderID = st.LeaderID
		}
		if agreed && leaderID != "" {
			if l := c.Node(leaderID); l != nil {
				if st, err := c.Status(l); err == nil && st.State == "leader" {
					return l, nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("no agreed leader within %s: %v", timeout, last)
}

// Eventually polls cond every 50 ms until it returns nil or timeout passes.
func Eventually(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Logs returns the tail of every node's and datanode's log (for failure
// reports).
func (c *Cluster) Logs(maxBytes int) string {
	var b strings.Builder
	procs := c.Nodes()
	for _, d := range c.Datanodes() {
		procs = append(procs, d.proc)
	}
	for _, n := range procs {
		data, err := os.ReadFile(n.LogPath)
		if err != nil {
			continue
		}
		if len(data) > maxBytes {
			data = data[len(data)-maxBytes:]
		}
		fmt.Fprintf(&b, "----- %s (%s) -----\n%s\n", n.ID, n.LogPath, data)
	}
	return b.String()
}

// Build compiles the given main packages (e.g. "./cmd/metasrv") of the
// module that contains the working directory into dir, and returns the
// binaries' paths in the same order.
func Build(dir string, pkgs ...string) ([]string, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range pkgs {
		bin := filepath.Join(dir, filepath.Base(p))
		cmd := exec.Command("go", "build", "-o", bin, p)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %v\n%s", p, err, b)
		}
		out = append(out, bin)
	}
	return out, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// inheritedEnv is this process's environment without the variables that
// start with one of the prefixes.
func inheritedEnv(strip []string) []string {
	var out []string
	for _, kv := range os.Environ() {
		keep := true
		for _, p := range strip {
			keep = keep && !strings.HasPrefix(kv, p)
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}
