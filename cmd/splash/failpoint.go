package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// failpointEnv names the environment variable that crash tests set to make
// `splash encode` kill itself with SIGKILL at a point of the commit protocol:
// NAME or NAME:N (the N-th time the point is reached, from 1). The names are
// shards.Failpoint*. It exists for tests; operators never need it.
const failpointEnv = "SPLASH_FAILPOINT"

// failpointFromEnv returns the hook for job.Config.Failpoint (shards.OutputOptions.Failpoint), or nil when
// the variable is unset.
func failpointFromEnv() (func(string), error) {
	v := os.Getenv(failpointEnv)
	if v == "" {
		return nil, nil
	}
	name, count, hasCount := strings.Cut(v, ":")
	n := int64(1)
	if hasCount {
		var err error
		if n, err = strconv.ParseInt(count, 10, 64); err != nil || n < 1 {
			return nil, usageErrorf("%s=%q: want NAME or NAME:N with N >= 1", failpointEnv, v)
		}
	}
	var hits atomic.Int64
	return func(point string) {
		if point != name || hits.Add(1) != n {
			return
		}
		fmt.Fprintf(os.Stderr, "splash: %s: killing the process at %s (hit %d)\n", failpointEnv, point, n)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}, nil
}
