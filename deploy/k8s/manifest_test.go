package k8s

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/metasrv/metasrv/deploy/localcluster"
)

func load(t *testing.T) map[string]map[string]any {
	t.Helper()
	f, err := os.Open("metasrv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string]any{}
	dec := yaml.NewDecoder(f)
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("metasrv.yaml does not parse: %v", err)
		}
		meta, _ := doc["metadata"].(map[string]any)
		out[doc["kind"].(string)+"/"+meta["name"].(string)] = doc
	}
	return out
}

// get walks a path of map keys and list indexes ("0").
func get(v any, path ...string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i := 0
			for _, c := range p {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func TestManifestShape(t *testing.T) {
	objs := load(t)
	ss := objs["StatefulSet/metasrv"]
	peers := objs["Service/metasrv-peers"]
	pdb := objs["PodDisruptionBudget/metasrv"]
	for name, o := range map[string]map[string]any{"StatefulSet/metasrv": ss, "Service/metasrv-peers": peers,
		"Service/metasrv": objs["Service/metasrv"], "PodDisruptionBudget/metasrv": pdb, "StatefulSet/datanode": objs["StatefulSet/datanode"]} {
		if o == nil {
			t.Fatalf("%s missing", name)
		}
	}
	c := get(ss, "spec", "template", "spec", "containers", "0")
	checks := []struct {
		what      string
		got, want any
	}{
		{"podManagementPolicy", get(ss, "spec", "podManagementPolicy"), "Parallel"},
		{"serviceName is the headless service", get(ss, "spec", "serviceName"), "metasrv-peers"},
		{"headless", get(peers, "spec", "clusterIP"), "None"},
		{"publishNotReadyAddresses", get(peers, "spec", "publishNotReadyAddresses"), true},
		{"liveness", get(c, "livenessProbe", "httpGet", "path"), "/admin/health"},
		{"readiness", get(c, "readinessProbe", "httpGet", "path"), "/admin/ready"},
		{"pdb", get(pdb, "spec", "maxUnavailable"), 1},
		{"preStop step-down", get(c, "lifecycle", "preStop", "exec", "command", "1"), "step-down"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s: got %v, want %v", ck.what, ck.got, ck.want)
		}
	}
	args := strings.Join(toStrings(get(c, "args")), " ")
	for _, want := range []string{"--initial-cluster-state=new", "--bootstrap-wait=", "--peers=metasrv-0=metasrv-0.metasrv-peers:3003"} {
		if !strings.Contains(args, want) {
			t.Errorf("metasrv args lack %q: %s", want, args)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestManifestFlagsExist checks every flag the manifest passes against the
// binaries' own --help, so a renamed flag cannot silently break pods.
func TestManifestFlagsExist(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	bins, err := localcluster.Build(t.TempDir(), "./cmd/metasrv", "./cmd/datanode")
	if err != nil {
		t.Fatal(err)
	}
	objs := load(t)
	for i, ss := range []string{"StatefulSet/metasrv", "StatefulSet/datanode"} {
		help, err := exec.Command(bins[i], "--help").Output()
		if err != nil {
			t.Fatalf("%s --help: %v", bins[i], err)
		}
		c := get(objs[ss], "spec", "template", "spec", "containers", "0")
		args := toStrings(get(c, "args"))
		if cmd := get(c, "lifecycle", "preStop", "exec", "command"); cmd != nil {
			sub := toStrings(cmd)[1]
			if !bytes.Contains(help, []byte("metasrv "+sub)) {
				t.Errorf("preStop uses subcommand %q that --help does not list", sub)
			}
		}
		for _, a := range args {
			name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if !bytes.Contains(help, []byte("--"+name+"\n")) {
				t.Errorf("%s passes --%s, which %s --help does not document", ss, name, bins[i])
			}
		}
		if len(args) == 0 {
			t.Errorf("%s passes no args", ss)
		}
	}
}
