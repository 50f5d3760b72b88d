// Package prometheus holds metasrv's Prometheus alert rules (alerts.yml)
// and their unit tests on recorded series (alerts_test.yml). The Go test
// runs promtool on them and checks that every metric the rules name is one
// metasrv exports.
package prometheus
