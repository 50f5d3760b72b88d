package prometheus

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestAlertRules runs `promtool check rules` and `promtool test rules`.
// Without promtool it is skipped, unless METASRV_REQUIRE_PROMTOOL is set
// (CI installs Debian's prometheus package and sets it).
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("METASRV_REQUIRE_PROMTOOL") != "" {
			t.Fatal("promtool not found (apt-get install prometheus)")
		}
		t.Skip("no promtool (apt-get install --no-install-recommends prometheus)")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestAlertMetricsExist: every metasrv_* series in the rules is declared
// by the code (a renamed metric would leave an alert that never fires).
func TestAlertMetricsExist(t *testing.T) {
	rules, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var code strings.Builder
	for _, dir := range []string{"../../server", "../../failover", "../../balancer", "../../fsm"} {
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				b, _ := os.ReadFile(p)
				code.Write(b)
			}
			return nil
		})
	}
	names := regexp.MustCompile(`metasrv_[a-z_]+`).FindAllString(string(rules), -1)
	if len(names) == 0 {
		t.Fatal("no metric in alerts.yml")
	}
	for _, name := range names {
		if !strings.Contains(code.String(), `"`+name+`"`) {
			t.Errorf("alerts.yml names %s, which no code exports", name)
		}
	}
}
