// Package cli holds what the metasrv and datanode commands share: flags
// that also come from the environment, and addresses for local probes.
package cli

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// EnvName is the environment variable for a flag: prefix + FLAG_NAME.
func EnvName(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ApplyEnv sets every flag (but those in skip) from its environment
// variable when that is set. Call it before fs.Parse, so the command line
// still wins.
func ApplyEnv(fs *flag.FlagSet, prefix string, skip ...string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil {
			return
		}
		for _, s := range skip {
			if f.Name == s {
				return
			}
		}
		name := EnvName(prefix, f.Name)
		if v, ok := os.LookupEnv(name); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %v", name, v, e)
			}
		}
	})
	return err
}

// LocalAddr turns a listen address into one a probe on the same host can
// dial: 0.0.0.0:P and :P become 127.0.0.1:P.
func LocalAddr(addr string) string {
	if strings.HasPrefix(addr, "0.0.0.0:") || strings.HasPrefix(addr, ":") {
		return "127.0.0.1:" + addr[strings.LastIndex(addr, ":")+1:]
	}
	return addr
}

// EnvOr returns the variable's value, or def when it is unset or empty.
func EnvOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
