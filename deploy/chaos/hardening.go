package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// The Compose cluster's hardening, checked on the containers themselves
// before every scenario (the suite runs deploy/compose/docker-compose.yml,
// the file of `make up`, with other ports and timings only): what `docker
// inspect` says of each container (the one-shot pki too), and for a running
// one what /proc says of its process, which is what `ps` shows every local
// user. A check here costs one `docker inspect` and a few /proc reads, and
// it sees the effective command line and environment (the image's, the
// Compose file's and the suite's overrides together), so it is cheaper and
// more faithful than a test that parses the files or starts a cluster of
// its own; and `make chaos` always has the images, where `go test` may not.
//
// `go run ./deploy/chaos -check-hardening -project metasrv` checks the
// cluster of `make up` the same way.

// The user the images run as (deploy/Dockerfile).
const imageUser = "65532:65532"

// inspected is the part of `docker inspect` the checks read.
type inspected struct {
	Name   string
	Path   string
	Args   []string
	Config struct {
		User string
		Env  []string
	}
	HostConfig struct {
		ReadonlyRootfs bool
		Privileged     bool
		SecurityOpt    []string
		CapAdd         []string
		CapDrop        []string
		PortBindings   map[string][]struct{ HostIp, HostPort string }
	}
	State struct {
		Running bool
		Pid     int
	}
}

// checkHardening inspects every container of the project and returns a
// one-line summary, or an error listing every problem.
func checkHardening(ctx context.Context, c *Compose) (string, error) {
	names, err := c.containers(ctx)
	if err != nil {
		return "", err
	}
	if len(names) == 0 {
		return "", fmt.Errorf("project %s has no containers", c.project)
	}
	out, err := docker(ctx, append([]string{"inspect"}, names...)...)
	if err != nil {
		return "", err
	}
	var all []inspected
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		return "", fmt.Errorf("docker inspect: %v", err)
	}
	var problems []string
	procs, procSkipped := 0, 0
	for _, in := range all {
		name := strings.TrimPrefix(in.Name, "/")
		for _, p := range hardeningProblems(in) {
			problems = append(problems, name+": "+p)
		}
		for _, p := range secretProblems(append([]string{in.Path}, in.Args...), in.Config.Env) {
			problems = append(problems, name+" (docker inspect): "+p)
		}
		if !in.State.Running || in.State.Pid <= 0 {
			continue
		}
		argv, env, err := procView(in.State.Pid)
		if err != nil || len(argv) == 0 || argv[0] != in.Path {
			// Not root: /proc/PID/environ of another user's process is
			// unreadable; or the suite runs in another pid namespace than
			// the Engine, where PID is some other process. docker inspect
			// has said it all anyway.
			procSkipped++
			continue
		}
		procs++
		for _, p := range secretProblems(argv, env) {
			problems = append(problems, name+" (/proc): "+p)
		}
	}
	if len(problems) > 0 {
		return "", fmt.Errorf("hardening: %s", strings.Join(problems, "; "))
	}
	proc := fmt.Sprintf("/proc of %d running", procs)
	if procSkipped > 0 {
		proc += fmt.Sprintf(", %d unreadable", procSkipped)
	}
	return fmt.Sprintf("%d containers: read-only root, no capabilities, no-new-privileges, user %s, ports on 127.0.0.1 only; "+
		"no secret in argv or environment (docker inspect, %s)", len(all), imageUser, proc), nil
}

// procView reads a process's command line and environment (NUL-separated).
func procView(pid int) (argv, env []string, err error) {
	split := func(b []byte) []string {
		var out []string
		for _, s := range bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0}) {
			out = append(out, string(s))
		}
		return out
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	cmdline, err := os.ReadFile(dir + "cmdline")
	if err != nil {
		return nil, nil, err
	}
	environ, err := os.ReadFile(dir + "environ")
	if err != nil {
		return nil, nil, err
	}
	return split(cmdline), split(environ), nil
}

// hardeningProblems: what a container of the cluster must have (the
// x-hardened block of the Compose file, the image's user, loopback ports).
func hardeningProblems(in inspected) []string {
	var out []string
	if !in.HostConfig.ReadonlyRootfs {
		out = append(out, "root filesystem is writable (want read_only: true)")
	}
	if in.HostConfig.Privileged {
		out = append(out, "privileged")
	}
	nnp := false
	for _, o := range in.HostConfig.SecurityOpt {
		if o == "no-new-privileges" || o == "no-new-privileges:true" || o == "no-new-privileges=true" {
			nnp = true
		}
	}
	if !nnp {
		out = append(out, fmt.Sprintf("no no-new-privileges (security_opt %q)", in.HostConfig.SecurityOpt))
	}
	dropAll := false
	for _, c := range in.HostConfig.CapDrop {
		if strings.EqualFold(c, "ALL") {
			dropAll = true
		}
	}
	if !dropAll {
		out = append(out, fmt.Sprintf("capabilities not dropped (cap_drop %q, want ALL)", in.HostConfig.CapDrop))
	}
	if len(in.HostConfig.CapAdd) > 0 {
		out = append(out, fmt.Sprintf("adds capabilities %q", in.HostConfig.CapAdd))
	}
	if in.Config.User != imageUser {
		out = append(out, fmt.Sprintf("runs as %q, want %s", in.Config.User, imageUser))
	}
	for port, bs := range in.HostConfig.PortBindings {
		for _, b := range bs {
			if b.HostIp != "127.0.0.1" {
				out = append(out, fmt.Sprintf("port %s published on %q, want 127.0.0.1", port, b.HostIp))
			}
		}
	}
	return out
}

// secretProblems finds secrets on a command line or in an environment:
// the token flags (--admin-token, the datanode's --token), their
// variables, any variable named like a secret that is not a *_FILE path,
// a *_FILE variable that is not a path, and key or certificate material.
// A problem names the flag or variable, never its value.
func secretProblems(argv, env []string) []string {
	var out []string
	for _, a := range argv {
		if name, ok := strings.CutPrefix(a, "-"); ok {
			name, _, _ = strings.Cut(strings.TrimPrefix(name, "-"), "=")
			if name == "admin-token" || name == "token" {
				out = append(out, fmt.Sprintf("argv passes --%s (a secret: use --%s-file)", name, name))
			}
		}
		if strings.Contains(a, "-----BEGIN") {
			out = append(out, "argv holds PEM material")
		}
	}
	for _, kv := range env {
		name, v, _ := strings.Cut(kv, "=")
		switch {
		case name == "METASRV_ADMIN_TOKEN" || name == "DATANODE_TOKEN":
			out = append(out, fmt.Sprintf("environment sets %s (a secret: use the *_FILE variable)", name))
		case strings.HasSuffix(name, "_FILE"):
			if v != "" && !strings.HasPrefix(v, "/") {
				out = append(out, fmt.Sprintf("%s is not an absolute path", name))
			}
		case secretName(name):
			out = append(out, fmt.Sprintf("environment sets %s, named like a secret", name))
		}
		if strings.Contains(v, "-----BEGIN") {
			out = append(out, fmt.Sprintf("%s holds PEM material", name))
		}
	}
	return out
}

func secretName(name string) bool {
	u := strings.ToUpper(name)
	for _, w := range []string{"TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"} {
		if strings.Contains(u, w) {
			return true
		}
	}
	return strings.HasSuffix(u, "_KEY")
}
