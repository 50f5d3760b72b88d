package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// The import graph the layout promises (docs/architecture.md draws it):
//
//	cmd → server → server/httpapi → server/leader → {failover, balancer} → fsm
//	httpapi and leader may use server/raftnode; raftnode uses neither;
//	server/wire is a leaf of plain bodies (standard library only);
//	server/certs (certificates, roles, reloads) imports no module package.
const mod = "github.com/metasrv/metasrv/"

// allowed lists, per package, the module packages it may depend on
// (transitively); nil means none.
var allowed = map[string][]string{
	"fsm":                nil,
	"server/wire":        nil,
	"server/certs":       nil,
	"server/auth":        {"server/certs"},
	"server/health":      {"server/wire"},
	"failover":           {"fsm", "server/wire"},
	"balancer":           {"fsm", "server/wire"},
	"server/raftnode":    {"fsm", "server/wire", "server/certs"},
	"server/leader":      {"server/raftnode", "failover", "balancer", "fsm", "server/wire", "server/certs"},
	"server/httpapi":     {"server/leader", "server/raftnode", "failover", "balancer", "fsm", "server/wire", "server/certs", "server/auth", "server/health"},
	"server":             {"server/health", "server/httpapi", "server/leader", "server/raftnode", "failover", "balancer", "fsm", "server/wire", "server/certs", "server/auth"},
	"cmd/datanode/agent": {"server/wire", "server/certs", "server/auth"},
}

// noDirect lists imports a package must not name itself: the consensus and
// term layers never speak HTTP.
var noDirect = map[string][]string{
	"server/raftnode": {"net/http"},
	"server/leader":   {"net/http"},
	"fsm":             {"net", "net/http"},
}

type listed struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Standard   bool
}

func goList(t *testing.T) map[string]listed {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,Deps,Standard", "../...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	pkgs := map[string]listed{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[strings.TrimPrefix(p.ImportPath, mod)] = p
	}
	return pkgs
}

func TestImportRules(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	pkgs := goList(t)
	std := map[string]bool{}
	for name, p := range pkgs {
		if p.Standard {
			std[name] = true
		}
	}
	for name, ok := range allowed {
		p, found := pkgs[name]
		if !found {
			t.Errorf("package %s is gone: update the import rules and docs/architecture.md", name)
			continue
		}
		okSet := map[string]bool{}
		for _, a := range ok {
			okSet[a] = true
		}
		var bad []string
		for _, d := range p.Deps {
			if rel, inMod := strings.CutPrefix(d, mod); inMod && !okSet[rel] {
				bad = append(bad, rel)
			}
		}
		sort.Strings(bad)
		if len(bad) > 0 {
			t.Errorf("%s depends on %v; it may depend only on %v", name, bad, ok)
		}
	}
	// server/wire is imported by every side; it must stay plain.
	for _, d := range pkgs["server/wire"].Deps {
		if !std[d] && !isStd(d) {
			t.Errorf("server/wire depends on %s; it may import only the standard library", d)
		}
	}
	for name, banned := range noDirect {
		for _, imp := range pkgs[name].Imports {
			for _, b := range banned {
				if imp == b {
					t.Errorf("%s imports %s", name, b)
				}
			}
		}
	}
	// Nothing below cmd/ is imported from outside cmd/ (package main or a
	// command's own part), and no product package imports deploy/.
	for name, p := range pkgs {
		if strings.HasPrefix(name, "cmd/") || strings.HasPrefix(name, "deploy/") || !strings.HasPrefix(p.ImportPath, mod) {
			continue
		}
		for _, d := range p.Deps {
			if strings.HasPrefix(d, mod+"cmd/") || strings.HasPrefix(d, mod+"deploy/") {
				t.Errorf("%s depends on %s", name, strings.TrimPrefix(d, mod))
			}
		}
	}
}

// isStd reports whether an import path is in the standard library (no dot
// in its first element).
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}
