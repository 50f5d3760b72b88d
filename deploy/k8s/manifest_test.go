package k8s

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
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
	var helps [][]byte
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
			if name == "POD_NAME" || name == "GOMEMLIMIT" { // the Go runtime's, not a flag
				continue
			}
			if !bytes.Contains(help, []byte("["+name+"]")) {
				t.Errorf("%s sets %s, which %s --help does not document", ss, name, bins[i])
			}
		}
		if len(args) == 0 {
			t.Errorf("%s passes no args", ss)
		}
		helps = append(helps, help)
	}
	// The flags of the lines commented out (tokens, see the header) must
	// exist too, in the binary of either StatefulSet.
	b, err := os.ReadFile("metasrv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	commented := regexp.MustCompile(`(?m)^\s*#\s*- --([a-z0-9-]+)=`).FindAllSubmatch(b, -1)
	if len(commented) == 0 {
		t.Error("metasrv.yaml shows no token flags commented out")
	}
	for _, m := range commented {
		if !bytes.Contains(helps[0], []byte("--"+string(m[1])+"\n")) && !bytes.Contains(helps[1], []byte("--"+string(m[1])+"\n")) {
			t.Errorf("metasrv.yaml shows --%s (commented out), which neither --help documents", m[1])
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

// podTemplates returns every pod template of the manifest by object name.
func podTemplates(t *testing.T) map[string]any {
	out := map[string]any{}
	for name, o := range load(t) {
		if spec := get(o, "spec", "template", "spec"); spec != nil {
			out[name] = spec
		}
	}
	if len(out) < 2 {
		t.Fatalf("want the metasrv and datanode pod templates, found %d", len(out))
	}
	return out
}

// TestManifestHardening: every pod runs without a service-account token or
// service links, as 65532 with fsGroup 65532; every container is non-root
// with a read-only root filesystem, no privilege escalation, no
// capabilities and the runtime's seccomp profile (set on the container or
// inherited from the pod where Kubernetes allows), and has CPU and memory
// requests and limits; GOMEMLIMIT, where set, is below the memory limit.
func TestManifestHardening(t *testing.T) {
	for name, spec := range podTemplates(t) {
		if get(spec, "automountServiceAccountToken") != false {
			t.Errorf("%s: automountServiceAccountToken is %v, want false", name, get(spec, "automountServiceAccountToken"))
		}
		if get(spec, "enableServiceLinks") != false {
			t.Errorf("%s: enableServiceLinks is %v, want false (service links add METASRV_* variables)", name, get(spec, "enableServiceLinks"))
		}
		pod := get(spec, "securityContext")
		for k, want := range map[string]any{"runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532, "runAsNonRoot": true} {
			if get(pod, k) != want {
				t.Errorf("%s: pod securityContext.%s = %v, want %v", name, k, get(pod, k), want)
			}
		}
		var containers []any
		for _, kind := range []string{"initContainers", "containers"} {
			cs, _ := get(spec, kind).([]any)
			containers = append(containers, cs...)
		}
		for _, c := range containers {
			cn := name + " container " + fmt.Sprint(get(c, "name"))
			sc := get(c, "securityContext")
			if sc == nil {
				t.Errorf("%s has no securityContext", cn)
				continue
			}
			inherited := func(path ...string) any {
				if v := get(sc, path...); v != nil {
					return v
				}
				return get(pod, path...)
			}
			checks := []struct {
				what      string
				got, want any
			}{
				{"runAsNonRoot", inherited("runAsNonRoot"), true},
				{"seccompProfile.type", inherited("seccompProfile", "type"), "RuntimeDefault"},
				{"readOnlyRootFilesystem", get(sc, "readOnlyRootFilesystem"), true},
				{"allowPrivilegeEscalation", get(sc, "allowPrivilegeEscalation"), false},
				{"capabilities.drop", strings.Join(toStrings(orEmpty(get(sc, "capabilities", "drop"))), ","), "ALL"},
				{"capabilities.add", get(sc, "capabilities", "add"), nil},
				{"privileged", get(sc, "privileged"), nil},
			}
			for _, ck := range checks {
				if ck.got != ck.want {
					t.Errorf("%s: securityContext.%s = %v, want %v", cn, ck.what, ck.got, ck.want)
				}
			}
			for _, res := range []string{"cpu", "memory"} {
				req, reqOK := quantity(get(c, "resources", "requests", res))
				lim, limOK := quantity(get(c, "resources", "limits", res))
				if !reqOK || !limOK || req <= 0 || req > lim {
					t.Errorf("%s: %s request %v, limit %v: want both, request <= limit", cn, res,
						get(c, "resources", "requests", res), get(c, "resources", "limits", res))
				}
			}
			if v, ok := envOf(c)["GOMEMLIMIT"]; ok {
				gml, ok := quantity(strings.TrimSuffix(v, "B")) // Go says MiB, Kubernetes Mi
				lim, _ := quantity(get(c, "resources", "limits", "memory"))
				if !ok || gml <= 0 || gml >= lim {
					t.Errorf("%s: GOMEMLIMIT %s: want below the memory limit %v", cn, v, get(c, "resources", "limits", "memory"))
				}
			}
		}
	}
}

func orEmpty(v any) any {
	if v == nil {
		return []any{}
	}
	return v
}

// quantity parses the Kubernetes quantities the manifest uses: "100m",
// "1", 2, "128Mi", "1Gi".
func quantity(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case string:
		mult := 1.0
		for suffix, m := range map[string]float64{"m": 1e-3, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30} {
			if n, ok := strings.CutSuffix(x, suffix); ok {
				x, mult = n, m
				break
			}
		}
		f, err := strconv.ParseFloat(x, 64)
		return f * mult, err == nil
	}
	return 0, false
}

// shippedFiles are the deployment files the project ships.
var shippedFiles = []string{"metasrv.yaml", "cert-manager.yaml", "../compose/docker-compose.yml", "../Dockerfile",
	"../../Makefile", "../local/run.sh"}

// TestNoSecretOnCommandLines: no shipped file passes a secret on a command
// line or in an environment value, where every local user can read it
// (ps, /proc/PID/environ): not --admin-token (--admin-token-file is a
// path), not the datanode's --token (--token-file), not their variables,
// and no env entry named like a secret holds a value other than a path.
// The chaos suite checks the same on the running containers
// (deploy/chaos/hardening.go).
func TestNoSecretOnCommandLines(t *testing.T) {
	bad := regexp.MustCompile(`--admin-token([=\s"']|$)|(^|[^-\w])--?token([=\s"']|$)|METASRV_ADMIN_TOKEN([^_A-Z]|$)|DATANODE_TOKEN([^_A-Z]|$)`)
	for _, f := range shippedFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := bad.FindString(line); m != "" {
				t.Errorf("%s:%d: %q passes a secret where local users read it; use the *-file flag: %s", f, i+1, strings.TrimSpace(m), strings.TrimSpace(line))
			}
		}
	}
	secretName := regexp.MustCompile(`(?i)token|secret|password|passwd|credential|_key$`)
	check := func(where, name, value string) {
		if strings.HasSuffix(name, "_FILE") {
			if value != "" && !strings.HasPrefix(value, "/") {
				t.Errorf("%s: %s = %q: want a path", where, name, value)
			}
			return
		}
		if secretName.MatchString(name) && value != "" {
			t.Errorf("%s: %s has a value in the environment: a secret there is readable by local users", where, name)
		}
	}
	for name, spec := range podTemplates(t) {
		cs, _ := get(spec, "containers").([]any)
		for _, c := range cs {
			for k, v := range envOf(c) {
				check(name, k, v)
			}
		}
	}
	var compose struct {
		Services map[string]struct {
			Environment map[string]any
			Command     []string
			Entrypoint  []string
		}
	}
	b, err := os.ReadFile("../compose/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatal(err)
	}
	for svc, s := range compose.Services {
		for k, v := range s.Environment {
			check("compose service "+svc, k, fmt.Sprint(v))
		}
	}
}

// TestComposeHardening: every Compose service (the one-shot pki too) has a
// read-only root filesystem, no capabilities and no-new-privileges, and
// publishes its ports on 127.0.0.1 only (also when a port variable is
// unset). The chaos suite checks the running containers the same way.
func TestComposeHardening(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			ReadOnly    bool     `yaml:"read_only"`
			SecurityOpt []string `yaml:"security_opt"`
			CapDrop     []string `yaml:"cap_drop"`
			CapAdd      []string `yaml:"cap_add"`
			Privileged  bool
			User        string
			Ports       []string
		}
	}
	b, err := os.ReadFile("../compose/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatal(err)
	}
	if len(compose.Services) != 7 {
		t.Errorf("want 7 services (pki, 3 metasrv, 3 datanodes), found %d", len(compose.Services))
	}
	portDefault := regexp.MustCompile(`^\$\{[A-Z0-9_]+:-([^}]*)\}:\d+$`)
	for name, s := range compose.Services {
		if !s.ReadOnly {
			t.Errorf("service %s: read_only is not true", name)
		}
		if strings.Join(s.SecurityOpt, ",") != "no-new-privileges:true" {
			t.Errorf("service %s: security_opt %q, want [no-new-privileges:true]", name, s.SecurityOpt)
		}
		if strings.Join(s.CapDrop, ",") != "ALL" || len(s.CapAdd) > 0 || s.Privileged {
			t.Errorf("service %s: cap_drop %q, cap_add %q, privileged %v: want [ALL], none, false", name, s.CapDrop, s.CapAdd, s.Privileged)
		}
		if s.User != "" {
			t.Errorf("service %s: user %q overrides the image's 65532", name, s.User)
		}
		for _, p := range s.Ports {
			m := portDefault.FindStringSubmatch(p)
			if m == nil || !strings.HasPrefix(m[1], "127.0.0.1:") {
				t.Errorf("service %s: port %q is not published on 127.0.0.1 by default", name, p)
			}
		}
	}
}

// TestDockerfileUser: every stage of the images ends as 65532:65532
// (scratch has no /etc/passwd, so the user is numeric).
func TestDockerfileUser(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages := 0
	user := ""
	end := func() {
		if stages > 0 && user != "65532:65532" {
			t.Errorf("stage %d of deploy/Dockerfile runs as %q, want USER 65532:65532", stages, user)
		}
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && strings.EqualFold(f[0], "FROM"):
			end()
			stages, user = stages+1, ""
		case len(f) >= 2 && strings.EqualFold(f[0], "USER"):
			user = f[1]
		}
	}
	end()
	if stages < 2 {
		t.Errorf("want the metasrv and datanode stages, found %d", stages)
	}
}
