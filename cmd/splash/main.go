// Command splash encodes document corpora with SPLADE models into impact
// shards. See README.md for usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/gpu"
	_ "github.com/splash-encode/splash/gpu/engines" // ONNX Runtime and the CUDA driver register with package gpu
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRootCommand().ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "splash:", err)
	}
	os.Exit(exitCode(ctx, err))
}

// Exit codes (documented in README.md).
const (
	exitOK        = 0
	exitFailure   = 1 // any other failure (bug, unexpected I/O error)
	exitUsage     = 2 // bad flags or arguments
	exitBadData   = 3 // bad input data or model: retrying will not help
	exitTransient = 4 // interrupted or transient failure: retrying may help
)

func exitCode(ctx context.Context, err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage), errors.Is(err, encode.ErrSettings), errors.Is(err, gpu.ErrNoGPU):
		return exitUsage
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return exitTransient
	case isTransientOSError(err): // before bad input: an input that cannot be read now may be fine later
		return exitTransient
	case errors.Is(err, encode.ErrBadInput):
		return exitBadData
	default:
		return exitFailure
	}
}

// transientErrnos are the OS errors that a later run may not meet: a full
// disk or quota (once space is freed), I/O errors and timeouts of a disk or
// network file system, resources exhausted for the moment. A run that fails
// with one of them left no shard looking done; re-running resumes.
var transientErrnos = []syscall.Errno{
	syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EAGAIN, syscall.ETIMEDOUT,
	syscall.EINTR, syscall.EBUSY, syscall.ESTALE, syscall.ENFILE, syscall.EMFILE, syscall.ENOMEM,
}

func isTransientOSError(err error) bool {
	for _, e := range transientErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
