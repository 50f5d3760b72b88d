package localcluster

// Helpers for the end-to-end test packages (cmd/metasrv, cmd/datanode,
// deploy/e2e): a TestMain that builds the binaries once, and a Cluster
// bound to one test that talks JSON over HTTP to its nodes.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/metasrv/metasrv/server/wire"
)

// RunTests is the TestMain of a package whose tests start the binaries of
// the main packages pkgs (e.g. "./cmd/metasrv"): it parses the flags,
// builds pkgs once into a temporary directory, stores each binary's path
// in *bins[i] (same order as pkgs), runs the tests, removes the directory
// and exits with the tests' code. Under -short it builds nothing: every
// test that starts processes skips itself there (SkipIfShort).
func RunTests(m *testing.M, pkgs []string, bins ...*string) {
	os.Exit(runTests(m, pkgs, bins, false))
}

// RunTestsEvenShort is RunTests for a package some of whose tests start
// processes under -short too: it builds the binaries under -short as well.
func RunTestsEvenShort(m *testing.M, pkgs []string, bins ...*string) {
	os.Exit(runTests(m, pkgs, bins, true))
}

func runTests(m *testing.M, pkgs []string, bins []*string, evenShort bool) int {
	if len(pkgs) != len(bins) {
		panic(fmt.Sprintf("localcluster: %d packages to build but %d binary paths", len(pkgs), len(bins)))
	}
	flag.Parse()
	if testing.Short() && !evenShort {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "localcluster-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	paths, err := Build(dir, pkgs...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i, p := range paths {
		*bins[i] = p
	}
	return m.Run()
}

// SkipIfShort skips a test that starts real processes under -short.
func SkipIfShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test with real processes; skipped with -short")
	}
}

// KeepEnv names an environment variable: when it is set, StartTest keeps
// each test's data and logs in $METASRV_E2E_KEEP/<test name> for a
// post-mortem instead of a temporary directory.
const KeepEnv = "METASRV_E2E_KEEP"

// TestOptions configures StartTest.
type TestOptions struct {
	Options // an empty Dir means t.TempDir() (or see KeepEnv)

	// LogTail is how many bytes of each process's log are printed when the
	// test failed; default 16 KiB.
	LogTail int
	// Wait bounds Eventually and MustCall; default 30 s.
	Wait time.Duration
	// Timeout bounds one request (Client.Timeout); 0 keeps Start's.
	Timeout time.Duration
}

// TestCluster is a Cluster bound to one test, made by StartTest.
type TestCluster struct {
	*Cluster
	T testing.TB
	// Wait bounds Eventually and MustCall.
	Wait time.Duration

	mu     sync.Mutex
	paused map[string]bool // metasrv nodes frozen through Pause
}

// StartTest starts a cluster (see Start) for test t and fails t if it
// cannot. Every process is killed when t ends; if t failed, the tail of
// each process's log is printed first.
func StartTest(t testing.TB, opts TestOptions) *TestCluster {
	t.Helper()
	if opts.LogTail == 0 {
		opts.LogTail = 16 << 10
	}
	if opts.Wait == 0 {
		opts.Wait = 30 * time.Second
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
		if keep := os.Getenv(KeepEnv); keep != "" {
			opts.Dir = filepath.Join(keep, t.Name())
		}
	}
	c, err := Start(opts.Options)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("process logs (last %d bytes each):\n%s", opts.LogTail, c.Logs(opts.LogTail))
		}
		c.Close()
	})
	if opts.Timeout > 0 {
		c.Client.Timeout = opts.Timeout
	}
	return &TestCluster{Cluster: c, T: t, Wait: opts.Wait, paused: map[string]bool{}}
}

// Eventually waits up to Wait for cond (see the function Eventually) and
// fails the test on timeout, saying what it waited for.
func (c *TestCluster) Eventually(what string, cond func() error) {
	c.T.Helper()
	if err := Eventually(c.Wait, cond); err != nil {
		c.T.Fatalf("%s: %v", what, err)
	}
}

// Pause freezes metasrv node n (SIGSTOP) and leaves it out of Live until
// Resume; it fails the test if it cannot.
func (c *TestCluster) Pause(n *Node) {
	c.T.Helper()
	if err := n.Pause(); err != nil {
		c.T.Fatalf("pause %s: %v", n.ID, err)
	}
	c.mu.Lock()
	c.paused[n.ID] = true
	c.mu.Unlock()
}

// Resume thaws a node frozen by Pause (SIGCONT); it fails the test if it
// cannot.
func (c *TestCluster) Resume(n *Node) {
	c.T.Helper()
	if err := n.Resume(); err != nil {
		c.T.Fatalf("resume %s: %v", n.ID, err)
	}
	c.mu.Lock()
	delete(c.paused, n.ID)
	c.mu.Unlock()
}

// Live returns the metasrv nodes that run and are not paused (by Pause).
func (c *TestCluster) Live() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Node
	for _, n := range c.Running() {
		if !c.paused[n.ID] {
			out = append(out, n)
		}
	}
	return out
}

// Call sends a request (SendJSON) for path to the live metasrv nodes in
// turn until one answers with anything but 503 (followers forward to the
// leader; a 503 says nothing was applied), and returns that answer. A node
// it cannot reach is skipped too. The error says why the last node tried
// did not answer.
func (c *TestCluster) Call(method, path, body string) (Reply, error) {
	var last error = errors.New("no live metasrv node")
	for _, n := range c.Live() {
		r, err := c.SendJSON(method, n.URL(path), body)
		if err != nil {
			last = fmt.Errorf("%s: %w", n.ID, err)
			continue
		}
		if r.Code == http.StatusServiceUnavailable {
			last = fmt.Errorf("%s %s %s: %s", n.ID, method, path, r)
			continue
		}
		return r, nil
	}
	return Reply{}, last
}

// MustCall is Call retried up to Wait while no node takes the request; it
// fails the test if none does, and returns the first real answer.
func (c *TestCluster) MustCall(method, path, body string) Reply {
	c.T.Helper()
	var r Reply
	err := Eventually(c.Wait, func() error {
		var err error
		r, err = c.Call(method, path, body)
		return err
	})
	if err != nil {
		c.T.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// PostJSON is MustCall with POST: body is JSON (or empty).
func (c *TestCluster) PostJSON(path, body string) Reply {
	c.T.Helper()
	return c.MustCall(http.MethodPost, path, body)
}

// GetJSON reads path through a live node (Call) into v; an answer other
// than 200 is an error.
func (c *TestCluster) GetJSON(path string, v any) error {
	r, err := c.Call(http.MethodGet, path, "")
	if err != nil {
		return err
	}
	if r.Code != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, r)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("GET %s: %v: %s", path, err, r.Body)
	}
	return nil
}

// Followers returns the given nodes except the leader, in order.
func Followers(leader *Node, nodes []*Node) []*Node {
	var out []*Node
	for _, n := range nodes {
		if n.ID != leader.ID {
			out = append(out, n)
		}
	}
	return out
}

// eventsPageLimit is the most events one GET /admin/events returns.
const eventsPageLimit = 10000

// Events reads every event with a raft index above since, oldest first,
// through a live node (GetJSON), page by page (since= the last index read)
// until a page comes back empty, so it is complete however long the log
// is. Events the server's bounded ring has already dropped are not there.
func (c *TestCluster) Events(since uint64) ([]Event, error) {
	var out []Event
	for {
		var page wire.EventsPage
		if err := c.GetJSON(fmt.Sprintf("/admin/events?since=%d&limit=%d", since, eventsPageLimit), &page); err != nil {
			return out, err
		}
		if len(page.Events) == 0 {
			return out, nil
		}
		last := page.Events[len(page.Events)-1].Index
		if last <= since {
			return out, fmt.Errorf("GET /admin/events?since=%d: a page ending at index %d", since, last)
		}
		out = append(out, page.Events...)
		since = last
	}
}

// LastEventIndex is the index of the newest event (0 if none). It retries
// for up to Wait while no node answers, then fails the test.
func (c *TestCluster) LastEventIndex() uint64 {
	c.T.Helper()
	var last uint64
	c.Eventually("read events", func() error {
		evs, err := c.Events(0)
		if err != nil {
			return err
		}
		last = 0
		for _, e := range evs {
			last = max(last, e.Index)
		}
		return nil
	})
	return last
}

// SyncBuffer is a buffer one goroutine writes (a process's output, a
// command's stdout) while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
