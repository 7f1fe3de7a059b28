package ort

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// LibraryEnv names the environment variable that overrides where the ONNX
// Runtime shared library is loaded from.
const LibraryEnv = "ONNXRUNTIME_SHARED_LIBRARY_PATH"

// libraryRel is where scripts/setup.sh installs the library, relative to the
// repository root.
const libraryRel = "third_party/onnxruntime/libonnxruntime.so.1"

// ErrNoLibrary is returned when no ONNX Runtime shared library can be found.
var ErrNoLibrary = errors.New("ONNX Runtime shared library not found")

// ErrNoCgo explains how to get a build that can run ONNX Runtime.
var ErrNoCgo = errors.New("this splash was built without cgo, which ONNX Runtime needs: rebuild with CGO_ENABLED=1 and gcc installed")

// Usable says why ONNX Runtime cannot run in this process: a build without
// cgo (ErrNoCgo) or no shared library found (ErrNoLibrary); nil when it
// can. Tests that need ONNX Runtime skip with its error.
func Usable() error {
	if !cgoEnabled {
		return ErrNoCgo
	}
	_, err := ResolveLibrary("")
	return err
}

// ResolveLibrary returns the path of the ONNX Runtime shared library to load:
// explicit (if non-empty), then $ONNXRUNTIME_SHARED_LIBRARY_PATH, then
// third_party/onnxruntime beside the executable or in the working directory
// or any of its parents, then fixed system paths.
//
// The library is native code loaded into the process, so its path comes only
// from configuration (the flag, the environment) and fixed install
// locations, never from data: not from the model directory (a downloaded
// model may carry a libonnxruntime.so), not from input or output paths. An
// explicit path is made absolute so that the dynamic loader opens that file
// rather than searching its library path for a bare name.
func ResolveLibrary(explicit string) (string, error) {
	if explicit != "" {
		return checkLibrary(explicit, "--ort-library")
	}
	if env := os.Getenv(LibraryEnv); env != "" {
		return checkLibrary(env, "$"+LibraryEnv)
	}
	var candidates []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		dir := filepath.Dir(exe)
		candidates = append(candidates, filepath.Join(dir, libraryRel), filepath.Join(dir, "..", libraryRel),
			filepath.Join(dir, "libonnxruntime.so.1"))
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			candidates = append(candidates, filepath.Join(dir, libraryRel))
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			return c, nil
		}
	}
	for _, sys := range []string{"/usr/local/lib/libonnxruntime.so.1", "/usr/lib/libonnxruntime.so.1", "/opt/onnxruntime/lib/libonnxruntime.so.1"} {
		if st, err := os.Stat(sys); err == nil && st.Mode().IsRegular() {
			return sys, nil
		}
	}
	return "", fmt.Errorf("%w: run scripts/setup.sh to install it into %s, or set %s to its path", ErrNoLibrary, libraryRel, LibraryEnv)
}

func checkLibrary(path, origin string) (string, error) {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%w: %s=%s: %v", ErrNoLibrary, origin, path, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s=%s is not a regular file", ErrNoLibrary, origin, path)
	}
	return path, nil
}
