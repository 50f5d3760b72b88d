package main

import (
	"strings"
	"testing"
)

func TestSecretProblems(t *testing.T) {
	const secret = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"
	clean := []string{"METASRV_CERT_FILE=/certs/n1.crt", "METASRV_KEY_FILE=/certs/n1.key", "METASRV_ADMIN_TOKEN_FILE=/run/tokens/admin",
		"DATANODE_TOKEN_FILE=/run/tokens/datanode-1", "METASRV_CLIENT_CERT_AUTH=true", "PATH=/usr/bin"}
	if p := secretProblems([]string{"/metasrv", "--admin-token-file=/run/a", "--token-file", "/run/t", "--key-file=/certs/k"}, clean); len(p) != 0 {
		t.Errorf("clean container reported: %q", p)
	}
	for _, tc := range []struct {
		argv, env []string
		want      string
	}{
		{[]string{"/metasrv", "--admin-token=" + secret}, nil, "--admin-token"},
		{[]string{"/metasrv", "--admin-token", secret}, nil, "--admin-token"},
		{[]string{"/metasrv", "-admin-token=" + secret}, nil, "--admin-token"},
		{[]string{"/datanode", "--token=" + secret}, nil, "--token"},
		{nil, []string{"METASRV_ADMIN_TOKEN=" + secret}, "METASRV_ADMIN_TOKEN"},
		{nil, []string{"DATANODE_TOKEN=" + secret}, "DATANODE_TOKEN"},
		{nil, []string{"API_SECRET=" + secret}, "API_SECRET"},
		{nil, []string{"TLS_KEY=" + secret}, "TLS_KEY"},
		{nil, []string{"METASRV_ADMIN_TOKEN_FILE=" + secret}, "not an absolute path"},
		{nil, []string{"CERT=-----BEGIN CERTIFICATE-----"}, "PEM"},
		{[]string{"/x", "-----BEGIN EC PRIVATE KEY-----"}, nil, "PEM"},
	} {
		p := strings.Join(secretProblems(tc.argv, tc.env), "; ")
		if !strings.Contains(p, tc.want) {
			t.Errorf("argv %q env %q: problems %q, want one about %s", tc.argv, tc.env, p, tc.want)
		}
		if strings.Contains(p, secret) {
			t.Errorf("a problem repeats the secret: %q", p)
		}
	}
}

func TestHardeningProblems(t *testing.T) {
	var good inspected
	good.Config.User = imageUser
	good.HostConfig.ReadonlyRootfs = true
	good.HostConfig.SecurityOpt = []string{"no-new-privileges:true"}
	good.HostConfig.CapDrop = []string{"ALL"}
	good.HostConfig.PortBindings = map[string][]struct{ HostIp, HostPort string }{"3002/tcp": {{"127.0.0.1", "3002"}}}
	if p := hardeningProblems(good); len(p) != 0 {
		t.Fatalf("hardened container reported: %q", p)
	}
	for what, spoil := range map[string]func(*inspected){
		"writable":          func(in *inspected) { in.HostConfig.ReadonlyRootfs = false },
		"privileged":        func(in *inspected) { in.HostConfig.Privileged = true },
		"no-new-privileges": func(in *inspected) { in.HostConfig.SecurityOpt = nil },
		"not dropped":       func(in *inspected) { in.HostConfig.CapDrop = []string{"NET_RAW"} },
		"adds":              func(in *inspected) { in.HostConfig.CapAdd = []string{"NET_ADMIN"} },
		"runs as":           func(in *inspected) { in.Config.User = "" },
		"published on": func(in *inspected) {
			in.HostConfig.PortBindings = map[string][]struct{ HostIp, HostPort string }{"3002/tcp": {{"", "3002"}}}
		},
	} {
		in := good
		spoil(&in)
		if p := strings.Join(hardeningProblems(in), "; "); !strings.Contains(p, what) {
			t.Errorf("%s: problems %q", what, p)
		}
	}
}
