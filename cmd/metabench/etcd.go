package main

import (
	"bytes"
	"context"
	"encoding/base64"
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
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
)

// etcd ports on each member's own loopback address (127.a.b.21, .22, ...),
// away from etcd's 2379/2380 in case the package started a system service.
const (
	etcdClientPort = 22379
	etcdPeerPort   = 22380
)

// ensureEtcd returns the etcd binary, installing Debian's etcd-server
// package (3.4) with apt-get when it is missing.
func ensureEtcd(logf func(string, ...any)) (string, error) {
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, nil
	}
	var sudo []string
	if os.Geteuid() != 0 {
		sudo = []string{"sudo", "-n"}
	}
	apt := func(args ...string) error {
		all := append(append([]string{}, sudo...), append([]string{"apt-get"}, args...)...)
		cmd := exec.Command(all[0], all[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(all, " "), err, tail(out, 2000))
		}
		return nil
	}
	logf("etcd not found: apt-get install -y etcd-server")
	if err := apt("install", "-y", "etcd-server"); err != nil {
		logf("apt-get install failed, running apt-get update first")
		if err := apt("update"); err != nil {
			return "", err
		}
		if err := apt("install", "-y", "etcd-server"); err != nil {
			return "", err
		}
	}
	// A package may start a system service on 2379/2380: we neither use nor
	// stop it (our members listen on their own addresses and ports).
	return exec.LookPath("etcd")
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// etcdVersion is the first line of `etcd --version`.
func etcdVersion(bin string) string {
	out, err := runCmd(bin, "--version")
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(line)
}

// etcdCluster is a 3-member etcd cluster on loopback, started by the
// benchmark with etcd's default timings (heartbeat 100 ms, election 1 s).
type etcdCluster struct {
	bin   string
	dir   string
	nodes []*etcdNode
}

type etcdNode struct {
	ID        string // n1, n2, n3
	Host      string
	ClientURL string
	DataDir   string
	LogPath   string

	proc *localcluster.Node // process machinery shared with metasrv nodes
}

// Addr is what the shared load code dials (host:port).
func (n *etcdNode) Addr() string { return strings.TrimPrefix(n.ClientURL, "http://") }

func startEtcd(bin, dir string, members int) (*etcdCluster, error) {
	c := &etcdCluster{bin: bin, dir: dir}
	var prefix string
	for try := 0; ; try++ {
		if try == 50 {
			return nil, errors.New("etcd: no free loopback address found")
		}
		prefix = fmt.Sprintf("127.%d.%d.", 1+rand.IntN(254), 1+rand.IntN(254))
		ok := true
		for i := 1; i <= members && ok; i++ {
			for _, p := range []int{etcdClientPort, etcdPeerPort} {
				ln, err := net.Listen("tcp", fmt.Sprintf("%s%d:%d", prefix, 20+i, p))
				if err != nil {
					ok = false
					break
				}
				ln.Close()
			}
		}
		if ok {
			break
		}
	}
	var initial []string
	for i := 1; i <= members; i++ {
		host := fmt.Sprintf("%s%d", prefix, 20+i)
		n := &etcdNode{ID: fmt.Sprintf("n%d", i), Host: host, ClientURL: fmt.Sprintf("http://%s:%d", host, etcdClientPort)}
		n.DataDir = filepath.Join(dir, n.ID)
		n.LogPath = filepath.Join(dir, n.ID+".log")
		c.nodes = append(c.nodes, n)
		initial = append(initial, fmt.Sprintf("%s=http://%s:%d", n.ID, host, etcdPeerPort))
	}
	token := fmt.Sprintf("metabench-%d", rand.Uint32())
	for _, n := range c.nodes {
		peer := fmt.Sprintf("http://%s:%d", n.Host, etcdPeerPort)
		args := []string{"--name", n.ID, "--data-dir", n.DataDir,
			"--listen-client-urls", n.ClientURL, "--advertise-client-urls", n.ClientURL,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", token, "--logger", "zap", "--log-outputs", "stderr"}
		// Only our flags: no ETCD_* variable from the environment.
		n.proc = localcluster.NewProcess("etcd "+n.ID, c.bin, n.LogPath, args, "ETCD_")
		if err := n.Start(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// Start runs the member (again, with its data after a kill).
func (n *etcdNode) Start() error { return n.proc.Start() }

// Running reports whether the member's process is alive.
func (n *etcdNode) Running() bool { return n.proc.Running() }

// Kill sends SIGKILL and waits for the process to be gone.
func (n *etcdNode) Kill() { n.proc.Kill() }

func (c *etcdCluster) Close() {
	for _, n := range c.nodes {
		n.Kill()
	}
}

func (c *etcdCluster) Running() []*etcdNode {
	var out []*etcdNode
	for _, n := range c.nodes {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// dataDirs maps each member's --data-dir to its id (for CPU sampling).
func (c *etcdCluster) dataDirs() map[string]string {
	m := map[string]string{}
	for _, n := range c.nodes {
		m[filepath.Clean(n.DataDir)] = n.ID
	}
	return m
}

var etcdKey = base64.StdEncoding.EncodeToString([]byte("/metasrv/maintenance"))

// etcdPutBody is the gateway body that writes the maintenance key.
func etcdPutBody(enable bool) []byte {
	v := base64.StdEncoding.EncodeToString([]byte(fmt.Sprint(enable)))
	return []byte(`{"key":"` + etcdKey + `","value":"` + v + `"}`)
}

var (
	etcdPutTrue     = etcdPutBody(true)
	etcdPutFalse    = etcdPutBody(false)
	etcdRangeLin    = []byte(`{"key":"` + etcdKey + `"}`)
	etcdRangeSerial = []byte(`{"key":"` + etcdKey + `","serializable":true}`)
)

// etcdPut writes the maintenance key through the gateway (POST /v3/kv/put).
func etcdPut(ctx context.Context, c *http.Client, addr string, enable bool) error {
	body := etcdPutFalse
	if enable {
		body = etcdPutTrue
	}
	return doReq(ctx, c, http.MethodPost, "http://"+addr+"/v3/kv/put", body)
}

// etcdRange reads it (POST /v3/kv/range): linearizable by default,
// serializable (local, possibly stale) when stale.
func etcdRange(ctx context.Context, c *http.Client, addr string, stale bool) error {
	body := etcdRangeLin
	if stale {
		body = etcdRangeSerial
	}
	return doReq(ctx, c, http.MethodPost, "http://"+addr+"/v3/kv/range", body)
}

type etcdStatus struct {
	Header struct {
		MemberID string `json:"member_id"`
	} `json:"header"`
	Leader string `json:"leader"`
}

func (c *etcdCluster) status(client *http.Client, n *etcdNode) (etcdStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var st etcdStatus
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, n.ClientURL+"/v3/maintenance/status", strings.NewReader("{}"))
	resp, err := client.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("etcd %s status %d: %s", n.ID, resp.StatusCode, bytes.TrimSpace(b))
	}
	return st, json.Unmarshal(b, &st)
}

// WaitLeader waits until every running member names the same leader and
// that leader is running; it returns the leader.
func (c *etcdCluster) WaitLeader(client *http.Client, timeout time.Duration) (*etcdNode, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		leader := ""
		agreed := true
		byMember := map[string]*etcdNode{}
		for _, n := range c.Running() {
			st, err := c.status(client, n)
			if err != nil {
				last, agreed = err, false
				break
			}
			byMember[st.Header.MemberID] = n
			if st.Leader == "" || st.Leader == "0" || (leader != "" && st.Leader != leader) {
				last, agreed = fmt.Errorf("etcd %s sees leader %q", n.ID, st.Leader), false
				break
			}
			leader = st.Leader
		}
		if agreed && byMember[leader] != nil {
			return byMember[leader], nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("etcd: no agreed leader within %s: %v", timeout, last)
}

// WaitHealthy waits for an agreed leader and a put acknowledged through
// every running member.
func (c *etcdCluster) WaitHealthy(client *http.Client, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if _, err := c.WaitLeader(client, timeout); err != nil {
		return err
	}
	for _, n := range c.Running() {
		var err error
		for time.Now().Before(deadline) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err = etcdPut(ctx, client, n.Addr(), false)
			cancel()
			if err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("etcd %s not healthy: %w", n.ID, err)
		}
	}
	return nil
}

// leaderAndFollower returns the etcd leader and one follower.
func (c *etcdCluster) leaderAndFollower(client *http.Client) (leader, follower *etcdNode, err error) {
	leader, err = c.WaitLeader(client, 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range c.Running() {
		if n != leader {
			return leader, n, nil
		}
	}
	return nil, nil, errors.New("etcd: no follower running")
}
