package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Compose drives one Compose project through the docker CLI. Debian's
// docker-compose v1 fails when it recreates a container on this Engine
// (KeyError: 'ContainerConfig'), so the project is only ever created from
// nothing (after down -v) and containers are then started, stopped, killed,
// paused and cut off with plain docker commands on their names.
type Compose struct {
	cmd     []string // "docker compose" or "docker-compose"
	project string
	file    string
	env     []string // extra environment for compose (ports, timings)
	logf    func(format string, args ...any)
}

// dockerAvailable reports whether a Docker Engine answers.
func dockerAvailable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker info: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// detectCompose returns "docker compose" if the plugin answers, else
// "docker-compose".
func detectCompose(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if exec.CommandContext(ctx, "docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}, nil
	}
	if exec.CommandContext(ctx, "docker-compose", "version").Run() == nil {
		return []string{"docker-compose"}, nil
	}
	return nil, errors.New("neither `docker compose` nor `docker-compose` answers; install one (Debian: apt-get install docker-compose)")
}

// run executes a command with a bound and returns its combined output.
func runCmd(ctx context.Context, timeout time.Duration, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	s := strings.TrimSpace(out.String())
	if err != nil {
		return s, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, lastLines(s, 5))
	}
	return s, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func docker(ctx context.Context, args ...string) (string, error) {
	return runCmd(ctx, 60*time.Second, nil, "docker", args...)
}

func (c *Compose) compose(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	full := append(append([]string{}, c.cmd[1:]...), "-p", c.project, "-f", c.file)
	full = append(full, args...)
	return runCmd(ctx, timeout, c.env, c.cmd[0], full...)
}

func (c *Compose) labelFilter() string { return "label=com.docker.compose.project=" + c.project }

// containers lists the project's containers by name (running or not).
func (c *Compose) containers(ctx context.Context) ([]string, error) {
	out, err := docker(ctx, "ps", "-a", "--filter", c.labelFilter(), "--format", "{{.Names}}")
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// Container returns the name of a service's container (<project>_<service>_1
// with Compose v1, <project>-<service>-1 with v2), found by its labels.
func (c *Compose) Container(ctx context.Context, service string) (string, error) {
	out, err := docker(ctx, "ps", "-a", "--filter", c.labelFilter(),
		"--filter", "label=com.docker.compose.service="+service, "--format", "{{.Names}}")
	if err != nil {
		return "", err
	}
	names := strings.Fields(out)
	if len(names) != 1 {
		return "", fmt.Errorf("service %s: want one container, found %q", service, names)
	}
	return names[0], nil
}

// Network returns the name of the project's network (metanet).
func (c *Compose) Network(ctx context.Context) (string, error) {
	out, err := docker(ctx, "network", "ls", "--filter", c.labelFilter(),
		"--filter", "label=com.docker.compose.network=metanet", "--format", "{{.Name}}")
	if err != nil {
		return "", err
	}
	names := strings.Fields(out)
	if len(names) != 1 {
		return "", fmt.Errorf("want one network metanet in project %s, found %q", c.project, names)
	}
	return names[0], nil
}

// Down removes every container, network and volume of the project, even
// ones an interrupted run left paused or cut off. It uses its own context
// so that it also runs after the run's context was cancelled.
func (c *Compose) Down() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A paused container cannot be stopped: thaw it first.
	if out, err := docker(ctx, "ps", "-a", "--filter", c.labelFilter(), "--filter", "status=paused", "--format", "{{.Names}}"); err == nil {
		for _, n := range strings.Fields(out) {
			_, _ = docker(ctx, "unpause", n)
		}
	}
	var errs []error
	if _, err := c.compose(ctx, 90*time.Second, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
		errs = append(errs, err)
	}
	// Sweep by label whatever compose did not remove (another compose file,
	// a half-created project).
	if names, err := c.containers(ctx); err == nil && len(names) > 0 {
		if _, err := docker(ctx, append([]string{"rm", "-f", "-v"}, names...)...); err != nil {
			errs = append(errs, err)
		}
	}
	for _, kind := range []string{"network", "volume"} {
		out, err := docker(ctx, kind, "ls", "-q", "--filter", c.labelFilter())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ids := strings.Fields(out); len(ids) > 0 {
			if _, err := docker(ctx, append([]string{kind, "rm"}, ids...)...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// What is left decides: compose's own complaints do not matter if
	// nothing of the project remains.
	if left := c.leftovers(ctx); left != "" {
		return fmt.Errorf("project %s not fully removed (%s): %v", c.project, left, errors.Join(errs...))
	}
	return nil
}

func (c *Compose) leftovers(ctx context.Context) string {
	var left []string
	for _, kind := range [][]string{{"ps", "-a"}, {"network", "ls"}, {"volume", "ls"}} {
		out, err := docker(ctx, append(kind, "-q", "--filter", c.labelFilter())...)
		if err != nil {
			left = append(left, kind[0]+": "+err.Error())
			continue
		}
		if n := len(strings.Fields(out)); n > 0 {
			left = append(left, fmt.Sprintf("%d %s", n, map[string]string{"ps": "containers", "network": "networks", "volume": "volumes"}[kind[0]]))
		}
	}
	return strings.Join(left, ", ")
}

// Create creates the project's network, volumes and containers (of the
// services named, or all) without starting anything (never a recreate: the
// project was just removed, and a container already created is left as
// it is). The nodes depend on the one-shot pki having completed, so it is
// created, and run, first (issueCertificates).
func (c *Compose) Create(ctx context.Context, services ...string) error {
	_, err := c.compose(ctx, 2*time.Minute, append([]string{"up", "--no-start"}, services...)...)
	return err
}

func (c *Compose) dockerOn(ctx context.Context, verb, service string, extra ...string) error {
	name, err := c.Container(ctx, service)
	if err != nil {
		return err
	}
	args := append([]string{verb}, extra...)
	_, err = docker(ctx, append(args, name)...)
	return err
}

func (c *Compose) Start(ctx context.Context, service string) error {
	return c.dockerOn(ctx, "start", service)
}

// Stop stops a container gracefully (SIGTERM, then SIGKILL after 10 s).
func (c *Compose) Stop(ctx context.Context, service string) error {
	return c.dockerOn(ctx, "stop", service, "-t", "10")
}

func (c *Compose) Kill(ctx context.Context, service string) error {
	return c.dockerOn(ctx, "kill", service)
}

func (c *Compose) Pause(ctx context.Context, service string) error {
	return c.dockerOn(ctx, "pause", service)
}

func (c *Compose) Unpause(ctx context.Context, service string) error {
	return c.dockerOn(ctx, "unpause", service)
}

// Disconnect cuts a container off metanet. The returned func reconnects it
// with the aliases it had (its service name among them: without it the
// other nodes could not resolve it again).
func (c *Compose) Disconnect(ctx context.Context, service string) (reconnect func(context.Context) error, err error) {
	name, err := c.Container(ctx, service)
	if err != nil {
		return nil, err
	}
	network, err := c.Network(ctx)
	if err != nil {
		return nil, err
	}
	out, err := docker(ctx, "inspect", "-f", "{{.Id}} {{json .NetworkSettings.Networks}}", name)
	if err != nil {
		return nil, err
	}
	id, js, _ := strings.Cut(out, " ")
	var nets map[string]struct{ Aliases []string }
	if err := json.Unmarshal([]byte(js), &nets); err != nil {
		return nil, fmt.Errorf("inspect %s networks: %v", name, err)
	}
	aliases := []string{service}
	for _, a := range nets[network].Aliases {
		if a != service && !strings.HasPrefix(id, a) { // docker adds the short id itself
			aliases = append(aliases, a)
		}
	}
	if _, err := docker(ctx, "network", "disconnect", network, name); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		args := []string{"network", "connect"}
		for _, a := range aliases {
			args = append(args, "--alias", a)
		}
		_, err := docker(ctx, append(args, network, name)...)
		return err
	}, nil
}

// Logs returns a container's logs (stdout and stderr).
func (c *Compose) Logs(ctx context.Context, name string) []byte {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "logs", "-t", name).CombinedOutput()
	if err != nil {
		out = append(out, []byte(fmt.Sprintf("\n[chaos: docker logs %s: %v]\n", name, err))...)
	}
	return out
}

// State returns a container's state (running, paused, exited, ...).
func (c *Compose) State(ctx context.Context, service string) (string, error) {
	name, err := c.Container(ctx, service)
	if err != nil {
		return "", err
	}
	return docker(ctx, "inspect", "-f", "{{.State.Status}}", name)
}

// Pid returns the host pid of a running container's main process.
func (c *Compose) Pid(ctx context.Context, service string) (int, error) {
	name, err := c.Container(ctx, service)
	if err != nil {
		return 0, err
	}
	out, err := docker(ctx, "inspect", "-f", "{{.State.Pid}}", name)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(out)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("container %s has no pid (%q)", name, out)
	}
	return pid, nil
}

// portFree reports whether a TCP port can be bound on 127.0.0.1.
func portFree(port int) error {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return ln.Close()
}
