package shards

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// nodeModulesEnv names extra node_modules folders (a list, as in PATH) where
// the tests look for the npm packages of the independent checks. A folder
// may be a node_modules folder or the folder that holds one.
const nodeModulesEnv = "SPLASH_NODE_MODULES"

// nodeModule finds the npm package pkg for an independent check (what): in
// the repository's node_modules (installed by scripts/setup.sh from
// package.json), else in $SPLASH_NODE_MODULES. It returns the package's
// absolute folder, for require(), and skips the test, saying why, when node
// or the package is missing.
func nodeModule(t *testing.T, pkg, what string) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skipf("node is not installed: %s needs it (scripts/setup.sh installs the test tools)", what)
	}
	dirs := []string{"../node_modules"}
	for _, d := range filepath.SplitList(os.Getenv(nodeModulesEnv)) {
		if d != "" {
			dirs = append(dirs, d, filepath.Join(d, "node_modules"))
		}
	}
	for _, d := range dirs {
		mod, err := filepath.Abs(filepath.Join(d, filepath.FromSlash(pkg)))
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(mod, "package.json")); err == nil {
			return mod
		}
	}
	t.Skipf("npm package %s is not in ../node_modules nor in $%s: %s is skipped (scripts/setup.sh installs the packages of package.json)", pkg, nodeModulesEnv, what)
	return ""
}

// runNode runs a node script (its source) with args and env added, and
// returns its standard output; it fails the test with node's standard
// error.
func runNode(t *testing.T, dir, source string, env []string, args ...string) []byte {
	t.Helper()
	script := filepath.Join(dir, "_script.cjs")
	if err := os.WriteFile(script, []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(script)
	cmd := exec.Command("node", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	return out
}
