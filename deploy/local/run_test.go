package local_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
)

// TestRunScript starts the cluster of `make run` (deploy/local/run.sh) on its
// fixed loopback ports, checks the banner (PIDs, restart commands, maintenance
// state, no pkill), restarts n2 and stops dn1 with the script, and stops the
// cluster with SIGTERM, as Ctrl-C would. About 10 s.
func TestRunScript(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	for _, tool := range []string{"bash", "curl", "tail", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	for _, port := range []string{"3002", "3003", "3102", "3103", "3202", "3203", "4001", "4002", "4003"} {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 200*time.Millisecond); err == nil {
			c.Close()
			t.Skipf("127.0.0.1:%s is in use (a make run cluster?)", port)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin, data := filepath.Join(tmp, "bin"), filepath.Join(tmp, "data")
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/metasrv", "./cmd/datanode")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	script := filepath.Join(root, "deploy/local/run.sh")
	runSh := func(args ...string) (string, error) {
		out, err := exec.Command(script, args...).CombinedOutput()
		return string(out), err
	}

	var out localcluster.SyncBuffer
	cmd := exec.Command(script, bin, data)
	cmd.Dir, cmd.Stdout, cmd.Stderr = tmp, &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if stopped {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		t.Logf("run.sh output:\n%s", out.String())
	})

	deadline := time.Now().Add(40 * time.Second)
	for !strings.Contains(out.String(), "Maintenance is off") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner within 40 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	banner := out.String()[strings.Index(out.String(), "metasrv cluster is up"):]
	if strings.Contains(banner, "pkill") {
		t.Errorf("banner suggests pkill")
	}
	for _, n := range []string{"n1", "n2", "n3", "dn1", "dn2", "dn3"} {
		re := regexp.MustCompile(`(?m)^  ` + n + ` +pid [0-9]+ +\S*run\.sh restart ` + n + ` ` + regexp.QuoteMeta(data) + `$`)
		if !re.MatchString(banner) {
			t.Errorf("banner has no PID and restart command for %s:\n%s", n, banner)
		}
	}
	if !strings.Contains(banner, "--data-dir "+data+"/n2 --peers ") {
		t.Errorf("banner has no command line for n2")
	}

	old, _ := os.ReadFile(filepath.Join(data, "n2.pid"))
	if o, err := runSh("restart", "n2", data); err != nil || !strings.Contains(o, "n2 is ready") {
		t.Fatalf("restart n2: %v\n%s", err, o)
	}
	if cur, _ := os.ReadFile(filepath.Join(data, "n2.pid")); len(cur) == 0 || bytes.Equal(cur, old) {
		t.Errorf("n2.pid %q after restart, was %q", cur, old)
	}
	if o, err := runSh("stop", "datanode-1", data); err != nil || !strings.Contains(o, "dn1 (pid ") {
		t.Errorf("stop datanode-1: %v\n%s", err, o)
	}
	if o, err := runSh("stop", "dn1", data); err == nil || !strings.Contains(o, "dn1 is not running") {
		t.Errorf("second stop dn1: %v\n%s", err, o)
	}

	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Errorf("run.sh: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("run.sh still runs 30 s after SIGTERM")
	}
	for _, n := range []string{"n1", "n2", "n3", "dn1", "dn2", "dn3"} {
		if _, err := os.Stat(filepath.Join(data, n+".pid")); err == nil {
			t.Errorf("%s.pid left after the cluster stopped", n)
		}
	}
	if o, err := runSh("restart", "n2", data); err == nil || !strings.Contains(o, "is not running") {
		t.Errorf("restart with the cluster stopped: %v\n%s", err, o)
	}
}
