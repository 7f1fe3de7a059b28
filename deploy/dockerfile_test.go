package deploy

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// This file holds a small Dockerfile parser (enough for splash's own
// Dockerfile: no Docker engine is needed) and the checks run on the
// repository's Dockerfile. Every problem names the line it is on.

// instruction is one logical line of a Dockerfile.
type instruction struct {
	line int    // physical line (from 1) where the instruction starts
	cmd  string // keyword in upper case: FROM, RUN, ...
	args string // the rest, continuation lines joined as Docker joins them
}

func (in instruction) String() string { return fmt.Sprintf("%d:%s %s", in.line, in.cmd, in.args) }

// stage is one FROM and the instructions after it.
type stage struct {
	name   string // the AS name in lower case ("" when there is none)
	base   string // image reference or name of an earlier stage
	line   int    // line of the FROM
	instrs []instruction
}

// dockerfile is a parsed Dockerfile: the ARGs before the first FROM, then the stages.
type dockerfile struct {
	globalArgs []instruction
	stages     []*stage
}

var knownInstructions = map[string]bool{
	"ADD": true, "ARG": true, "CMD": true, "COPY": true, "ENTRYPOINT": true, "ENV": true,
	"EXPOSE": true, "FROM": true, "HEALTHCHECK": true, "LABEL": true, "MAINTAINER": true,
	"ONBUILD": true, "RUN": true, "SHELL": true, "STOPSIGNAL": true, "USER": true,
	"VOLUME": true, "WORKDIR": true,
}

var escapeDirective = regexp.MustCompile(`(?i)^#\s*escape\s*=\s*(\S*)\s*$`)

// parseInstructions splits src into logical lines, as Docker does: a line
// ending in a backslash (trailing blanks allowed) continues on the next one,
// the backslash removed and the next line appended as it is; comment lines
// (first non-blank character '#') and blank lines are skipped, also inside a
// continuation; '#' elsewhere is part of the text. Unsupported here, and so
// reported: an escape directive other than the backslash, heredocs
// (RUN <<EOF), and a continuation at the end of the file (Docker accepts it;
// here it more likely means a cut file).
func parseInstructions(src string) ([]instruction, error) {
	lines := strings.Split(src, "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	var out []instruction
	for i := 0; i < len(lines); i++ {
		text := strings.TrimLeft(lines[i], " \t")
		if text == "" {
			continue
		}
		if strings.HasPrefix(text, "#") {
			if m := escapeDirective.FindStringSubmatch(text); m != nil && len(out) == 0 && m[1] != `\` {
				return nil, fmt.Errorf("line %d: escape directive %q: only the backslash is supported", i+1, m[1])
			}
			continue
		}
		start := i + 1
		text, more := cutContinuation(text)
		for more {
			i++
			if i >= len(lines) {
				return nil, fmt.Errorf("line %d: instruction continues past the end of the file", start)
			}
			next := lines[i]
			if t := strings.TrimLeft(next, " \t"); t == "" || strings.HasPrefix(t, "#") {
				continue
			}
			var part string
			part, more = cutContinuation(next)
			text += part
		}
		text = strings.TrimSpace(text)
		keyword, args := text, ""
		if j := strings.IndexAny(text, " \t"); j >= 0 {
			keyword, args = text[:j], strings.TrimSpace(text[j+1:])
		}
		cmd := strings.ToUpper(keyword)
		if !knownInstructions[cmd] {
			return nil, fmt.Errorf("line %d: unknown instruction %q", start, keyword)
		}
		if args == "" {
			return nil, fmt.Errorf("line %d: %s without arguments", start, cmd)
		}
		if cmd == "RUN" || cmd == "COPY" || cmd == "ADD" {
			for _, w := range strings.Fields(args) {
				if strings.HasPrefix(w, "<<") {
					return nil, fmt.Errorf("line %d: %s with a heredoc (%s): not supported by this parser", start, cmd, w)
				}
			}
		}
		out = append(out, instruction{line: start, cmd: cmd, args: args})
	}
	return out, nil
}

// cutContinuation removes a trailing backslash (and blanks after it) and
// says whether there was one.
func cutContinuation(s string) (string, bool) {
	t := strings.TrimRight(s, " \t")
	if strings.HasSuffix(t, `\`) {
		return t[:len(t)-1], true
	}
	return s, false
}

// parseDockerfile parses src into global ARGs and stages.
func parseDockerfile(src string) (*dockerfile, error) {
	instrs, err := parseInstructions(src)
	if err != nil {
		return nil, err
	}
	df := &dockerfile{}
	seen := map[string]int{}
	for _, in := range instrs {
		if in.cmd != "FROM" {
			if len(df.stages) == 0 {
				if in.cmd != "ARG" {
					return nil, fmt.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
				}
				df.globalArgs = append(df.globalArgs, in)
				continue
			}
			st := df.stages[len(df.stages)-1]
			st.instrs = append(st.instrs, in)
			continue
		}
		w, _ := dropFlags(words(in.args))
		st := &stage{line: in.line}
		switch {
		case len(w) == 1:
			st.base = w[0]
		case len(w) == 3 && strings.EqualFold(w[1], "AS"):
			st.base, st.name = w[0], strings.ToLower(w[2])
			if prev, ok := seen[st.name]; ok {
				return nil, fmt.Errorf("line %d: stage name %q already used on line %d", in.line, st.name, prev)
			}
			seen[st.name] = in.line
		default:
			return nil, fmt.Errorf("line %d: FROM: want IMAGE [AS NAME], got %q", in.line, in.args)
		}
		df.stages = append(df.stages, st)
	}
	if len(df.stages) == 0 {
		return nil, fmt.Errorf("no FROM instruction")
	}
	return df, nil
}

// words splits s at blanks outside quotes; quotes are removed and a
// backslash outside single quotes keeps the next character as it is.
func words(s string) []string {
	var out []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// dropFlags removes leading --name=value words and returns them by name.
func dropFlags(w []string) ([]string, map[string]string) {
	flags := map[string]string{}
	for len(w) > 0 && strings.HasPrefix(w[0], "--") {
		k, v, _ := strings.Cut(strings.TrimPrefix(w[0], "--"), "=")
		flags[k] = v
		w = w[1:]
	}
	return w, flags
}

// envPairs returns the variables an ENV instruction sets, in order
// (KEY=VALUE pairs, or the old form KEY VALUE...).
func envPairs(in instruction) ([][2]string, error) {
	w := words(in.args)
	if !strings.Contains(w[0], "=") {
		if len(w) < 2 {
			return nil, fmt.Errorf("line %d: ENV %s without a value", in.line, w[0])
		}
		return [][2]string{{w[0], strings.Join(w[1:], " ")}}, nil
	}
	var out [][2]string
	for _, p := range w {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: ENV: %q is not KEY=VALUE", in.line, p)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// stageByName returns the stage named name, nil if there is none.
func (df *dockerfile) stageByName(name string) *stage {
	for _, st := range df.stages {
		if st.name == strings.ToLower(name) {
			return st
		}
	}
	return nil
}

// env returns the variables set by stage st (and by the earlier stage it
// starts from, if any), with the line that set each one last.
func (df *dockerfile) env(st *stage) (map[string]string, map[string]int, []error) {
	vals, lines := map[string]string{}, map[string]int{}
	var errs []error
	if parent := df.stageByName(st.base); parent != nil && parent != st && parent.line < st.line {
		pv, pl, perrs := df.env(parent)
		vals, lines, errs = pv, pl, perrs
	}
	for _, in := range st.instrs {
		if in.cmd != "ENV" {
			continue
		}
		pairs, err := envPairs(in)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, p := range pairs {
			vals[p[0]], lines[p[0]] = p[1], in.line
		}
	}
	return vals, lines, errs
}

// copyOp is a COPY or ADD: its --from (if any), sources and destination.
type copyOp struct {
	line int
	from string
	srcs []string
	dest string
}

func copies(st *stage) []copyOp {
	var out []copyOp
	for _, in := range st.instrs {
		if in.cmd != "COPY" && in.cmd != "ADD" {
			continue
		}
		w, flags := dropFlags(words(in.args))
		if len(w) < 2 {
			continue // reported by checkCopies
		}
		out = append(out, copyOp{line: in.line, from: flags["from"], srcs: w[:len(w)-1], dest: w[len(w)-1]})
	}
	return out
}

// copiedBy returns the COPY of st that puts a file at p (its destination is
// p, or a folder, ending in '/', that holds p).
func copiedBy(st *stage, p string) (copyOp, bool) {
	for _, c := range copies(st) {
		if c.dest == p || (strings.HasSuffix(c.dest, "/") && strings.HasPrefix(p, c.dest)) {
			return c, true
		}
	}
	return copyOp{}, false
}

var pinnedCUDATag = regexp.MustCompile(`^\d+\.\d+\.\d+-`)

// imageTag returns the repository and tag (or digest) of an image
// reference; tag is "" when the reference has neither.
func imageTag(ref string) (repo, tag string) {
	if r, d, ok := strings.Cut(ref, "@"); ok {
		return r, "@" + d
	}
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash {
		return ref[:colon], ref[colon+1:]
	}
	return ref, ""
}

// checkPinned reports an image reference that is not pinned to a tag other
// than latest or to a digest.
func checkPinned(line int, what, ref string) error {
	if strings.Contains(ref, "$") {
		return fmt.Errorf("line %d: %s %q: image chosen by a variable; pin it in the file", line, what, ref)
	}
	_, tag := imageTag(ref)
	switch {
	case tag == "":
		return fmt.Errorf("line %d: %s %q has no tag: pin a version", line, what, ref)
	case tag == "latest":
		return fmt.Errorf("line %d: %s %q uses the tag latest: pin a version", line, what, ref)
	case strings.HasPrefix(tag, "@") && !strings.HasPrefix(tag, "@sha256:"):
		return fmt.Errorf("line %d: %s %q: digest is not sha256", line, what, ref)
	}
	return nil
}

// versionFlag finds -X main.version=$VAR or ${VAR} in a go build line.
var versionFlag = regexp.MustCompile(`-ldflags[= ]+["']?[^"']*-X[ =]main\.version=\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

// checkVersionFlag reports a go build (in, of stage st) that does not set
// main.version from an ARG declared earlier in the stage.
func checkVersionFlag(st *stage, in instruction) error {
	m := versionFlag.FindStringSubmatch(in.args)
	if m == nil {
		return fmt.Errorf(`line %d: stage %s: go build without -ldflags "-X main.version=${SPLASH_VERSION}" (the version splash reports)`, in.line, st.name)
	}
	for _, a := range st.instrs {
		if a.line >= in.line {
			break
		}
		if a.cmd == "ARG" {
			name, _, _ := strings.Cut(a.args, "=")
			if strings.TrimSpace(name) == m[1] {
				return nil
			}
		}
	}
	return fmt.Errorf("line %d: stage %s: main.version=${%s}: no ARG %s before it in the stage", in.line, st.name, m[1], m[1])
}

// Stages the repository's Dockerfile must have; the last is the default target.
var (
	requiredStages = []string{"build", "cpu", "cuda"}
	runtimeStages  = map[string]string{"cpu": "build", "cuda": "build"} // target -> stage that builds its binary (one binary for both)
	finalStage     = "cuda"
)

// checkDockerfile returns every problem of df, each naming its line.
func checkDockerfile(df *dockerfile) []error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var names []string
	for _, st := range df.stages {
		names = append(names, st.name)
	}
	for _, want := range requiredStages {
		if df.stageByName(want) == nil {
			add(fmt.Errorf("stage %q is missing (stages: %s)", want, strings.Join(names, ", ")))
		}
	}
	if last := df.stages[len(df.stages)-1]; last.name != finalStage {
		add(fmt.Errorf("line %d: the last stage (the default target) is %q, want %q", last.line, last.name, finalStage))
	}

	// Base images and COPY --from: earlier stages, or pinned images.
	earlier := map[string]bool{}
	for _, st := range df.stages {
		if !earlier[strings.ToLower(st.base)] && st.base != "scratch" {
			add(checkPinned(st.line, "base image", st.base))
		}
		for _, in := range st.instrs {
			if in.cmd != "COPY" && in.cmd != "ADD" {
				continue
			}
			w, flags := dropFlags(words(in.args))
			if len(w) < 2 {
				add(fmt.Errorf("line %d: %s needs a source and a destination", in.line, in.cmd))
			}
			if from, ok := flags["from"]; ok && !earlier[strings.ToLower(from)] {
				if df.stageByName(from) != nil {
					add(fmt.Errorf("line %d: COPY --from=%s names a stage defined later", in.line, from))
				} else if _, err := strconv.Atoi(from); err != nil {
					add(checkPinned(in.line, "COPY --from image", from))
				}
			}
		}
		if st.name != "" {
			earlier[st.name] = true
		}
	}

	// The build stage builds cmd/splash with cgo and -trimpath, and without
	// build tags: the binary carries its CUDA support, loaded at run time.
	// It sets splash's version (-ldflags "-X main.version=${ARG}") from a
	// build ARG of the stage, declared before the build.
	for _, name := range []string{"build"} {
		st := df.stageByName(name)
		if st == nil {
			continue
		}
		found := false
		for _, in := range st.instrs {
			if in.cmd != "RUN" || !strings.Contains(in.args, "go build") {
				continue
			}
			found = true
			for _, want := range []string{"CGO_ENABLED=1", "-trimpath", "./cmd/splash"} {
				if !strings.Contains(in.args, want) {
					add(fmt.Errorf("line %d: stage %s: go build without %s", in.line, name, want))
				}
			}
			if strings.Contains(in.args, "-tags") {
				add(fmt.Errorf("line %d: stage %s: go build with -tags: splash is one binary whose CUDA support loads at run time", in.line, name))
			}
			add(checkVersionFlag(st, in))
		}
		if !found {
			add(fmt.Errorf("line %d: stage %s never runs go build", st.line, name))
		}
	}

	for _, name := range slices.Sorted(maps.Keys(runtimeStages)) {
		st := df.stageByName(name)
		if st == nil {
			continue
		}
		errs = append(errs, checkRuntime(df, st, runtimeStages[name])...)
	}
	if st := df.stageByName("cuda"); st != nil {
		errs = append(errs, checkCUDA(df, st)...)
	}
	return errs
}

// checkRuntime checks a target image: non-root numeric USER after its last
// RUN, an exec-form ENTRYPOINT running the splash binary copied from
// builder, and ONNXRUNTIME_SHARED_LIBRARY_PATH naming a file the stage copies in.
func checkRuntime(df *dockerfile, st *stage, builder string) []error {
	var errs []error
	lastRun, lastUser, lastEntry := -1, -1, -1
	for i, in := range st.instrs {
		switch in.cmd {
		case "RUN":
			lastRun = i
		case "USER":
			lastUser = i
		case "ENTRYPOINT":
			lastEntry = i
		}
	}
	switch {
	case lastUser < 0:
		errs = append(errs, fmt.Errorf("line %d: stage %s never sets USER: the image would run as root", st.line, st.name))
	case lastUser < lastRun:
		errs = append(errs, fmt.Errorf("line %d: stage %s: USER comes before the last RUN (line %d); set it after", st.instrs[lastUser].line, st.name, st.instrs[lastRun].line))
	}
	if lastUser >= 0 {
		in := st.instrs[lastUser]
		user, _, _ := strings.Cut(in.args, ":")
		uid, err := strconv.ParseUint(user, 10, 32)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("line %d: stage %s: USER %q: want a numeric uid (Kubernetes' runAsNonRoot can only check numbers)", in.line, st.name, in.args))
		case uid == 0:
			errs = append(errs, fmt.Errorf("line %d: stage %s: USER %q is root", in.line, st.name, in.args))
		}
	}

	if lastEntry < 0 {
		errs = append(errs, fmt.Errorf("line %d: stage %s has no ENTRYPOINT", st.line, st.name))
	} else {
		in := st.instrs[lastEntry]
		var argv []string
		if err := json.Unmarshal([]byte(in.args), &argv); err != nil || len(argv) == 0 {
			errs = append(errs, fmt.Errorf("line %d: stage %s: ENTRYPOINT %s: want the exec form [\"/path/splash\"] (the shell form keeps SIGTERM from reaching splash)", in.line, st.name, in.args))
		} else if path.Base(argv[0]) != "splash" {
			errs = append(errs, fmt.Errorf("line %d: stage %s: ENTRYPOINT runs %s, want splash", in.line, st.name, argv[0]))
		} else if c, ok := copiedBy(st, argv[0]); !ok {
			errs = append(errs, fmt.Errorf("line %d: stage %s: ENTRYPOINT %s: no COPY in the stage puts it there", in.line, st.name, argv[0]))
		} else if !strings.EqualFold(c.from, builder) {
			errs = append(errs, fmt.Errorf("line %d: stage %s: %s comes from %q, want the binary of stage %s", c.line, st.name, argv[0], c.from, builder))
		}
	}

	env, lines, envErrs := df.env(st)
	errs = append(errs, envErrs...)
	const ortVar = "ONNXRUNTIME_SHARED_LIBRARY_PATH"
	if lib, ok := env[ortVar]; !ok {
		errs = append(errs, fmt.Errorf("line %d: stage %s does not set %s", st.line, st.name, ortVar))
	} else if !path.IsAbs(lib) {
		errs = append(errs, fmt.Errorf("line %d: stage %s: %s=%q is not an absolute path", lines[ortVar], st.name, ortVar, lib))
	} else if _, ok := copiedBy(st, lib); !ok {
		errs = append(errs, fmt.Errorf("line %d: stage %s: %s=%s: not copied into the stage by any COPY", lines[ortVar], st.name, ortVar, lib))
	}
	return errs
}

// checkCUDA checks the cuda target: a pinned nvidia/cuda runtime image with
// cuDNN, and the NVIDIA container settings.
func checkCUDA(df *dockerfile, st *stage) []error {
	var errs []error
	repo, tag := imageTag(st.base)
	repo = strings.TrimPrefix(strings.TrimPrefix(repo, "docker.io/"), "nvcr.io/")
	if repo != "nvidia/cuda" {
		errs = append(errs, fmt.Errorf("line %d: stage cuda starts from %q, want nvidia/cuda", st.line, st.base))
	}
	if !pinnedCUDATag.MatchString(tag) || !strings.Contains(tag, "cudnn") || !strings.Contains(tag, "runtime") {
		errs = append(errs, fmt.Errorf("line %d: stage cuda: tag %q: want an exact CUDA version with cuDNN, runtime flavour (like 12.8.1-cudnn-runtime-ubuntu24.04)", st.line, tag))
	}
	env, lines, _ := df.env(st) // ENV syntax errors are reported by checkRuntime
	if v := env["NVIDIA_VISIBLE_DEVICES"]; v == "" {
		errs = append(errs, fmt.Errorf("line %d: stage cuda does not set NVIDIA_VISIBLE_DEVICES", st.line))
	}
	caps, ok := env["NVIDIA_DRIVER_CAPABILITIES"]
	got := strings.Split(caps, ",")
	slices.Sort(got)
	if !ok {
		errs = append(errs, fmt.Errorf("line %d: stage cuda does not set NVIDIA_DRIVER_CAPABILITIES", st.line))
	} else if !reflect.DeepEqual(got, []string{"compute", "utility"}) {
		errs = append(errs, fmt.Errorf("line %d: stage cuda: NVIDIA_DRIVER_CAPABILITIES=%s, want compute,utility", lines["NVIDIA_DRIVER_CAPABILITIES"], caps))
	}
	return errs
}

// TestDockerfile checks the repository's Dockerfile.
func TestDockerfile(t *testing.T) {
	const file = "../Dockerfile"
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	df, err := parseDockerfile(string(src))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for _, err := range checkDockerfile(df) {
		t.Errorf("%s: %v", file, err)
	}
	var stages []string
	for _, st := range df.stages {
		stages = append(stages, fmt.Sprintf("%s (line %d, %s)", st.name, st.line, st.base))
	}
	t.Logf("stages: %s", strings.Join(stages, "; "))
}

// goodDockerfile passes every check; the cases of TestCheckDockerfile break it.
const goodDockerfile = `ARG V=1
FROM golang:1.26.8-bookworm AS build
ARG SPLASH_VERSION=0.1.0-dev
RUN CGO_ENABLED=1 go build -ldflags "-X main.version=${SPLASH_VERSION}" -trimpath -o /out/splash ./cmd/splash
FROM debian:bookworm-slim AS ort-gpu
RUN mkdir -p /opt/onnxruntime/lib
FROM debian:bookworm-slim AS cpu
RUN useradd --uid 65532 splash
COPY --from=build /out/splash /usr/local/bin/splash
COPY --from=build /src/libonnxruntime.so.1 /usr/local/lib/libonnxruntime.so.1
ENV ONNXRUNTIME_SHARED_LIBRARY_PATH=/usr/local/lib/libonnxruntime.so.1
USER 65532
ENTRYPOINT ["/usr/local/bin/splash"]
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 AS cuda
RUN useradd --uid 65532 splash
COPY --from=build /out/splash /usr/local/bin/splash
COPY --from=build /opt/onnxruntime/ /opt/onnxruntime/
ENV ONNXRUNTIME_SHARED_LIBRARY_PATH=/opt/onnxruntime/lib/libonnxruntime.so.1 \
    NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/splash"]
`

// TestCheckDockerfile shows that each check catches what it is for, at the right line.
func TestCheckDockerfile(t *testing.T) {
	df, err := parseDockerfile(goodDockerfile)
	if err != nil {
		t.Fatal(err)
	}
	if errs := checkDockerfile(df); len(errs) != 0 {
		t.Fatalf("good Dockerfile: %v", errs)
	}
	for _, tc := range []struct {
		name, old, new string
		want           string // substring of one of the errors, line included
	}{
		{"latest", "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04", "nvidia/cuda:latest", "line 14: base image \"nvidia/cuda:latest\" uses the tag latest"},
		{"untagged", "FROM debian:bookworm-slim AS cpu", "FROM debian AS cpu", "line 7: base image \"debian\" has no tag"},
		{"variable image", "FROM debian:bookworm-slim AS cpu", "FROM ${BASE} AS cpu", "line 7: base image \"${BASE}\": image chosen by a variable"},
		{"no cudnn", "12.8.1-cudnn-runtime", "12.8.1-runtime", "line 14: stage cuda: tag \"12.8.1-runtime-ubuntu24.04\""},
		{"devel image", "12.8.1-cudnn-runtime", "12.8.1-cudnn-devel", "line 14: stage cuda: tag"},
		{"floating cuda tag", "12.8.1-cudnn-runtime", "12.8-cudnn-runtime", "line 14: stage cuda: tag"},
		{"not nvidia", "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04", "ubuntu:24.04", "line 14: stage cuda starts from \"ubuntu:24.04\""},
		{"root", "USER 65532:65532", "USER 0:0", "line 20: stage cuda: USER \"0:0\" is root"},
		{"named user", "USER 65532\n", "USER splash\n", "line 12: stage cpu: USER \"splash\": want a numeric uid"},
		{"no user", "USER 65532\n", "", "line 7: stage cpu never sets USER"},
		{"run after user", "ENTRYPOINT [\"/usr/local/bin/splash\"]\nFROM nvidia", "RUN chmod 777 /tmp\nENTRYPOINT [\"/usr/local/bin/splash\"]\nFROM nvidia", "line 12: stage cpu: USER comes before the last RUN (line 13)"},
		{"shell entrypoint", "ENTRYPOINT [\"/usr/local/bin/splash\"]\nFROM nvidia", "ENTRYPOINT /usr/local/bin/splash\nFROM nvidia", "line 13: stage cpu: ENTRYPOINT /usr/local/bin/splash: want the exec form"},
		{"other entrypoint", "ENTRYPOINT [\"/usr/local/bin/splash\"]\nFROM nvidia", "ENTRYPOINT [\"/bin/sh\"]\nFROM nvidia", "line 13: stage cpu: ENTRYPOINT runs /bin/sh"},
		{"other binary in cuda", "splash\nCOPY --from=build /out/splash /usr/local/bin/splash\nCOPY --from=build /opt", "splash\nCOPY --from=ort-gpu /out/splash /usr/local/bin/splash\nCOPY --from=build /opt", "line 16: stage cuda: /usr/local/bin/splash comes from \"ort-gpu\", want the binary of stage build"},
		{"no ort variable", "ENV ONNXRUNTIME_SHARED_LIBRARY_PATH=/usr/local/lib/libonnxruntime.so.1\n", "", "line 7: stage cpu does not set ONNXRUNTIME_SHARED_LIBRARY_PATH"},
		{"ort not copied", "ONNXRUNTIME_SHARED_LIBRARY_PATH=/opt/onnxruntime/lib/", "ONNXRUNTIME_SHARED_LIBRARY_PATH=/usr/lib/", "line 18: stage cuda: ONNXRUNTIME_SHARED_LIBRARY_PATH=/usr/lib/libonnxruntime.so.1: not copied"},
		{"capabilities", "NVIDIA_DRIVER_CAPABILITIES=compute,utility", "NVIDIA_DRIVER_CAPABILITIES=all", "line 18: stage cuda: NVIDIA_DRIVER_CAPABILITIES=all, want compute,utility"},
		{"no visible devices", "NVIDIA_VISIBLE_DEVICES=all ", "", "line 14: stage cuda does not set NVIDIA_VISIBLE_DEVICES"},
		{"cuda not last", "", "FROM debian:bookworm-slim AS extra\n", "line 22: the last stage (the default target) is \"extra\", want \"cuda\""},
		{"stage missing", "AS cpu\n", "AS slim\n", "stage \"cpu\" is missing"},
		{"tags cuda", "-trimpath -o", "-trimpath -tags cuda -o", "line 4: stage build: go build with -tags"},
		{"no trimpath", "-trimpath -o", "-o", "line 4: stage build: go build without -trimpath"},
		{"copy from unknown image", "COPY --from=build /opt/onnxruntime/", "COPY --from=elsewhere /opt/onnxruntime/", "line 17: COPY --from image \"elsewhere\" has no tag"},
		{"no version", `-ldflags "-X main.version=${SPLASH_VERSION}" `, "", "line 4: stage build: go build without -ldflags \"-X main.version=${SPLASH_VERSION}\""},
		{"version without arg", "ARG SPLASH_VERSION=0.1.0-dev", "ARG OTHER=1", "line 4: stage build: main.version=${SPLASH_VERSION}: no ARG SPLASH_VERSION before it"},
		{"copy from later stage", "COPY --from=build /src/", "COPY --from=cuda /src/", "line 10: COPY --from=cuda names a stage defined later"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := goodDockerfile + tc.new
			if tc.old != "" {
				if !strings.Contains(goodDockerfile, tc.old) {
					t.Fatalf("%q is not in goodDockerfile", tc.old)
				}
				src = strings.Replace(goodDockerfile, tc.old, tc.new, 1)
			}
			df, err := parseDockerfile(src)
			if err != nil {
				t.Fatal(err)
			}
			errs := checkDockerfile(df)
			var msgs []string
			for _, err := range errs {
				msgs = append(msgs, err.Error())
			}
			if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, tc.want) }) {
				t.Errorf("want an error containing %q, got:\n%s", tc.want, strings.Join(msgs, "\n"))
			}
		})
	}
}

// TestParseInstructions covers the parser: continuations, comments, blank
// lines, keyword case, and the errors, each naming its line.
func TestParseInstructions(t *testing.T) {
	type in = instruction
	for _, tc := range []struct {
		name    string
		src     string
		want    []instruction
		wantErr string
	}{
		{name: "plain", src: "FROM a:1\nRUN make\n", want: []in{{1, "FROM", "a:1"}, {2, "RUN", "make"}}},
		{name: "no final newline, CRLF", src: "FROM a:1\r\nRUN make", want: []in{{1, "FROM", "a:1"}, {2, "RUN", "make"}}},
		{name: "comments and blank lines", src: "# syntax=docker/dockerfile:1\n\n  # indented comment\nFROM a:1\n\n\nUSER 1\n",
			want: []in{{4, "FROM", "a:1"}, {7, "USER", "1"}}},
		{name: "hash inside a line is text", src: "FROM a:1\nRUN echo a # b\n", want: []in{{1, "FROM", "a:1"}, {2, "RUN", "echo a # b"}}},
		{name: "continuation", src: "FROM a:1\nRUN a \\\n && b \\\n && c\nUSER 1\n",
			want: []in{{1, "FROM", "a:1"}, {2, "RUN", "a  && b  && c"}, {5, "USER", "1"}}},
		{name: "continuation joins without a blank", src: "FROM a:1\nRUN echo ab\\\ncd\n",
			want: []in{{1, "FROM", "a:1"}, {2, "RUN", "echo abcd"}}},
		{name: "blanks after the backslash", src: "FROM a:1\nRUN a \\  \t\n b\n", want: []in{{1, "FROM", "a:1"}, {2, "RUN", "a  b"}}},
		{name: "comments and blank lines inside a continuation", src: "FROM a:1\nRUN a \\\n    # why b\n\n    && b\nUSER 2\n",
			want: []in{{1, "FROM", "a:1"}, {2, "RUN", "a     && b"}, {6, "USER", "2"}}},
		{name: "keyword case and tabs", src: "from\ta:1 as B\nenv  K=V\n", want: []in{{1, "FROM", "a:1 as B"}, {2, "ENV", "K=V"}}},
		{name: "backslash escape directive", src: "# escape=\\\nFROM a:1\n", want: []in{{2, "FROM", "a:1"}}},
		{name: "continuation at end of file", src: "FROM a:1\nRUN a \\\n  && b \\\n", wantErr: "line 2: instruction continues past the end of the file"},
		{name: "comment last in a continuation", src: "FROM a:1\nRUN a \\\n# only a comment\n", wantErr: "line 2: instruction continues past"},
		{name: "no arguments", src: "FROM a:1\n\nWORKDIR\n", wantErr: "line 3: WORKDIR without arguments"},
		{name: "unknown instruction", src: "FROM a:1\nRUNN x\n", wantErr: "line 2: unknown instruction \"RUNN\""},
		{name: "heredoc", src: "FROM a:1\nRUN <<EOF\necho\nEOF\n", wantErr: "line 2: RUN with a heredoc"},
		{name: "other escape character", src: "# escape=`\nFROM a:1\n", wantErr: "line 1: escape directive \"`\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseInstructions(tc.src)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q (instructions %v)", err, tc.wantErr, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

// TestParseDockerfile covers stages, global ARGs and the helpers that read arguments.
func TestParseDockerfile(t *testing.T) {
	src := "ARG V=1\nFROM a:1 AS Base\nENV A=1 B=\"two words\"\nFROM base\nENV C 3 4\nFROM --platform=$BUILDPLATFORM b:2 as y\nCOPY --from=base --chown=1:1 /x /y /z/\n"
	df, err := parseDockerfile(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(df.globalArgs) != 1 || df.globalArgs[0].line != 1 {
		t.Errorf("global ARGs: %v", df.globalArgs)
	}
	var got []string
	for _, st := range df.stages {
		got = append(got, fmt.Sprintf("%d %q %s %d", st.line, st.name, st.base, len(st.instrs)))
	}
	want := []string{`2 "base" a:1 1`, `4 "" base 1`, `6 "y" b:2 1`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stages\ngot  %q\nwant %q", got, want)
	}
	env, lines, errs := df.env(df.stages[1]) // inherits from stage base
	if len(errs) != 0 || !reflect.DeepEqual(env, map[string]string{"A": "1", "B": "two words", "C": "3 4"}) ||
		lines["A"] != 3 || lines["C"] != 5 {
		t.Errorf("env %v lines %v errs %v", env, lines, errs)
	}
	c := copies(df.stages[2])
	if len(c) != 1 || c[0].from != "base" || !reflect.DeepEqual(c[0].srcs, []string{"/x", "/y"}) || c[0].dest != "/z/" {
		t.Errorf("copies %+v", c)
	}
	if op, ok := copiedBy(df.stages[2], "/z/file"); !ok || op.line != 7 {
		t.Errorf("copiedBy /z/file: %+v %v", op, ok)
	}
	for _, tc := range []struct{ repo, tag, ref string }{
		{"golang", "1.26.8-bookworm", "golang:1.26.8-bookworm"},
		{"localhost:5000/x/y", "", "localhost:5000/x/y"},
		{"localhost:5000/x/y", "2", "localhost:5000/x/y:2"},
		{"nvidia/cuda", "@sha256:ab", "nvidia/cuda@sha256:ab"},
	} {
		if repo, tag := imageTag(tc.ref); repo != tc.repo || tag != tc.tag {
			t.Errorf("imageTag(%q) = %q, %q; want %q, %q", tc.ref, repo, tag, tc.repo, tc.tag)
		}
	}

	for _, tc := range []struct{ src, want string }{
		{"RUN a\nFROM a:1\n", "line 1: RUN before the first FROM"},
		{"FROM a:1 AS x\nFROM b:1 AS X\n", "line 2: stage name \"x\" already used on line 1"},
		{"FROM a:1 AS\n", "line 1: FROM: want IMAGE [AS NAME]"},
		{"ARG X=1\n", "no FROM instruction"},
	} {
		if _, err := parseDockerfile(tc.src); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseDockerfile(%q): error %v, want %q", tc.src, err, tc.want)
		}
	}
	if _, err := envPairs(instruction{line: 9, cmd: "ENV", args: "A=1 B"}); err == nil || !strings.Contains(err.Error(), "line 9") {
		t.Errorf("envPairs A=1 B: %v", err)
	}
}
