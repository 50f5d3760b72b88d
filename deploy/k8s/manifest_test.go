package k8s

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/metasrv/metasrv/deploy/localcluster"
)

func load(t *testing.T) map[string]map[string]any { return loadFile(t, "metasrv.yaml") }

func loadFile(t *testing.T, name string) map[string]map[string]any {
	t.Helper()
	f, err := os.Open(name)
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
			t.Fatalf("%s does not parse: %v", name, err)
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
		for name := range envOf(c) {
			if name == "POD_NAME" {
				continue
			}
			if !bytes.Contains(help, []byte("["+name+"]")) {
				t.Errorf("%s sets %s, which %s --help does not document", ss, name, bins[i])
			}
		}
		if len(args) == 0 {
			t.Errorf("%s passes no args", ss)
		}
	}
}

// envOf returns a container's env entries that have a value.
func envOf(c any) map[string]string {
	out := map[string]string{}
	env, _ := get(c, "env").([]any)
	for _, e := range env {
		name, _ := get(e, "name").(string)
		if v, ok := get(e, "value").(string); ok {
			out[name] = v
		}
	}
	return out
}

// settings returns a container's flags, from args (--name=value) and from
// its METASRV_/DATANODE_ environment, by flag name.
func settings(c any, envPrefix string) map[string]string {
	out := map[string]string{}
	if args, ok := get(c, "args").([]any); ok {
		for _, a := range toStrings(args) {
			name, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			out[name] = strings.TrimSpace(strings.Split(v, " #")[0])
		}
	}
	for name, v := range envOf(c) {
		if f, ok := strings.CutPrefix(name, envPrefix); ok {
			out[strings.ReplaceAll(strings.ToLower(f), "_", "-")] = v
		}
	}
	return out
}

// TestManifestTLS: every metasrv and datanode container runs with TLS,
// each pod with its own certificate picked by $(POD_NAME) from a Secret
// mounted at /certs, probes speak HTTPS, and nothing says --insecure.
func TestManifestTLS(t *testing.T) {
	objs := load(t)
	for _, tc := range []struct {
		ss, prefix, secret, probe string
		want                      map[string]string
	}{
		{"StatefulSet/metasrv", "METASRV_", "metasrv-tls", "/admin/ready", map[string]string{
			"peer-cert-file": "/certs/$(POD_NAME).crt", "peer-key-file": "/certs/$(POD_NAME).key",
			"peer-trusted-ca-file": "/certs/ca.crt", "cert-file": "/certs/$(POD_NAME).crt",
			"key-file": "/certs/$(POD_NAME).key", "trusted-ca-file": "/certs/ca.crt", "client-cert-auth": "true",
		}},
		{"StatefulSet/datanode", "DATANODE_", "datanode-tls", "", map[string]string{
			"metasrv-ca-file": "/certs/ca.crt", "cert-file": "/certs/$(POD_NAME).crt", "key-file": "/certs/$(POD_NAME).key",
		}},
	} {
		spec := get(objs[tc.ss], "spec", "template", "spec")
		containers, _ := get(spec, "containers").([]any)
		if len(containers) == 0 {
			t.Fatalf("%s has no containers", tc.ss)
		}
		for i, c := range containers {
			got := settings(c, tc.prefix)
			for flag, want := range tc.want {
				if got[flag] != want {
					t.Errorf("%s container %d: --%s = %q, want %q", tc.ss, i, flag, got[flag], want)
				}
			}
			if _, ok := got["insecure"]; ok {
				t.Errorf("%s container %d says --insecure", tc.ss, i)
			}
			mounted := false
			for _, m := range get(c, "volumeMounts").([]any) {
				if get(m, "mountPath") == "/certs" && get(m, "readOnly") == true {
					mounted = true
					vol := get(m, "name")
					for _, v := range get(spec, "volumes").([]any) {
						if get(v, "name") == vol && get(v, "secret", "secretName") != tc.secret {
							t.Errorf("%s: /certs is not Secret %s: %v", tc.ss, tc.secret, v)
						}
					}
				}
			}
			if !mounted {
				t.Errorf("%s container %d mounts no read-only /certs", tc.ss, i)
			}
			for _, probe := range []string{"livenessProbe", "readinessProbe"} {
				if p := get(c, probe, "httpGet"); p != nil && get(p, "scheme") != "HTTPS" {
					t.Errorf("%s %s is not HTTPS: %v", tc.ss, probe, p)
				}
			}
		}
		if get(spec, "securityContext", "runAsUser") != 65532 {
			t.Errorf("%s does not run as 65532: %v", tc.ss, get(spec, "securityContext"))
		}
	}
}

// TestCertManagerExample: the cert-manager Certificates match what the
// pods expect: members by pod name with the host they are dialled by, and
// pod datanode-N holding datanode N+1's certificate (--id-from-name).
func TestCertManagerExample(t *testing.T) {
	objs := loadFile(t, "cert-manager.yaml")
	for i := 0; i < 3; i++ {
		pod := "metasrv-" + strconv.Itoa(i)
		c := objs["Certificate/"+pod]
		if c == nil {
			t.Fatalf("no Certificate %s", pod)
		}
		if get(c, "spec", "commonName") != pod || get(c, "spec", "subject", "organizations", "0") != "metasrv-node" {
			t.Errorf("%s: CN %v, O %v; want CN %[1]s, O metasrv-node", pod, get(c, "spec", "commonName"), get(c, "spec", "subject", "organizations"))
		}
		dns := strings.Join(toStrings(get(c, "spec", "dnsNames")), ",")
		if !strings.Contains(dns, pod+".metasrv-peers,") || !strings.Contains(","+strings.Join(toStrings(get(c, "spec", "ipAddresses")), ","), ",127.0.0.1") {
			t.Errorf("%s: dnsNames %s, ipAddresses %v: want %s.metasrv-peers and 127.0.0.1", pod, dns, get(c, "spec", "ipAddresses"), pod)
		}
		dpod := "datanode-" + strconv.Itoa(i)
		d := objs["Certificate/"+dpod]
		if d == nil {
			t.Fatalf("no Certificate %s", dpod)
		}
		if want := "datanode-" + strconv.Itoa(i+1); get(d, "spec", "commonName") != want || get(d, "spec", "subject", "organizations", "0") != "metasrv-datanode" {
			t.Errorf("pod %s: CN %v, O %v; want %s (id = ordinal + 1), metasrv-datanode", dpod, get(d, "spec", "commonName"), get(d, "spec", "subject", "organizations"), want)
		}
	}
}

// TestNoInsecureShipped: no shipped configuration turns the plaintext
// refusal off.
func TestNoInsecureShipped(t *testing.T) {
	for _, f := range []string{"metasrv.yaml", "cert-manager.yaml", "../compose/docker-compose.yml", "../Dockerfile"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"--insecure", "INSECURE", "insecure=true"} {
			if bytes.Contains(b, []byte(bad)) {
				t.Errorf("%s contains %q", f, bad)
			}
		}
	}
}

// GreptimeDB's HTTP port is served (:4000, compat for its operator) and
// the NetworkPolicy admits it only from the operator's namespace; raft
// only from metasrv pods.
func TestManifestGreptimePortAndNetworkPolicy(t *testing.T) {
	docs := load(t)
	args := get(docs["StatefulSet/metasrv"], "spec", "template", "spec", "containers", "0", "args").([]any)
	var have []string
	for _, a := range args {
		have = append(have, a.(string))
	}
	joined := strings.Join(have, " ")
	for _, want := range []string{"--http-addr=0.0.0.0:4000", "--http-greptime-compat"} {
		if !strings.Contains(joined, want) {
			t.Errorf("metasrv args lack %s: %v", want, have)
		}
	}
	np, ok := docs["NetworkPolicy/metasrv"]
	if !ok {
		t.Fatal("no NetworkPolicy metasrv")
	}
	rules := get(np, "spec", "ingress").([]any)
	from := map[int]any{}
	for _, r := range rules {
		for _, p := range get(r, "ports").([]any) {
			port := get(p, "port").(int)
			from[port] = get(r, "from")
		}
	}
	if get(from[4000], "0", "namespaceSelector") == nil || get(from[4000], "0", "podSelector") != nil || len(from[4000].([]any)) != 1 {
		t.Errorf("port 4000 must be admitted from the operator's namespace only: %v", from[4000])
	}
	if get(from[3003], "0", "podSelector", "matchLabels", "app") != "metasrv" || len(from[3003].([]any)) != 1 {
		t.Errorf("raft (3003) must be admitted from metasrv pods only: %v", from[3003])
	}
}
