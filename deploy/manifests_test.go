package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// This file renders the Kubernetes manifests (base/ and every overlay under
// overlays/) in-process with kustomize, decodes every rendered object strictly
// into its k8s.io/api type, as an API server would (unknown, duplicate or
// mis-cased fields and unknown kinds fail), and checks the rules that the
// comments in base/ state. The checks are plain functions over the decoded
// objects; TestManifestRulesCatchBreakage breaks a good rendering in many ways
// and makes sure that each break is reported.

const (
	containerName = "splash"
	imageUser     = 65532 // the Dockerfile's USER
	gpuResource   = corev1.ResourceName("nvidia.com/gpu")
	metricsPort   = 9090
)

// variant is what a kustomization must render to.
type variant struct {
	gpu      bool   // GPU limit and toleration on the encode pods
	device   string // the value of --device
	imageTag string // the tag of the encode image
}

// variants names every kustomization under deploy/ and what it renders;
// TestManifests fails on an overlay missing here.
var variants = map[string]variant{
	"base":         {gpu: true, device: "cuda", imageTag: "cuda"},
	"overlays/cpu": {gpu: false, device: "cpu", imageTag: "cpu"},
}

// The objects every rendering holds, by "Kind name".
var expectedObjects = []string{
	"ConfigMap splash-config",
	"CronJob splash-finalize",
	"CronJob splash-nightly",
	"Job splash-encode",
	"ServiceAccount splash",
}

// kinds maps "apiVersion Kind" to a new object of its type. Any other kind
// fails decoding: a new kind needs a type here and rules below.
var kinds = map[string]func() metav1.Object{
	"batch/v1 Job":      func() metav1.Object { return new(batchv1.Job) },
	"batch/v1 CronJob":  func() metav1.Object { return new(batchv1.CronJob) },
	"v1 ConfigMap":      func() metav1.Object { return new(corev1.ConfigMap) },
	"v1 ServiceAccount": func() metav1.Object { return new(corev1.ServiceAccount) },
}

// kustomizations lists base and every overlays/* folder with a
// kustomization.yaml, relative to deploy/.
func kustomizations(t *testing.T) []string {
	t.Helper()
	dirs := []string{"base"}
	found, err := filepath.Glob(filepath.Join("overlays", "*", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		dirs = append(dirs, filepath.ToSlash(filepath.Dir(f)))
	}
	return dirs
}

// render runs kustomize on dir as `kubectl kustomize dir` does and splits the
// output into its documents.
func render(dir string) ([][]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	return splitDocuments(out)
}

func splitDocuments(src []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(src)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			docs = append(docs, doc)
		}
	}
}

// decodeStrict decodes one YAML document into the k8s.io/api type of its
// apiVersion and kind, as strictly as an API server's strict field
// validation: duplicate keys, unknown fields, fields in the wrong case and
// values of the wrong type are errors, and so is a kind not in kinds.
func decodeStrict(doc []byte) (metav1.Object, string, error) {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, "", err
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(j, &tm); err != nil {
		return nil, "", err
	}
	newObject, ok := kinds[tm.APIVersion+" "+tm.Kind]
	if !ok {
		return nil, "", fmt.Errorf("unexpected kind %q of apiVersion %q: add its type and rules to manifests_test.go", tm.Kind, tm.APIVersion)
	}
	obj := newObject()
	strictErrs, err := sigsjson.UnmarshalStrict(j, obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", tm.Kind, obj.GetName(), err)
	}
	if len(strictErrs) > 0 {
		return nil, "", fmt.Errorf("%s %s: %w", tm.Kind, obj.GetName(), errors.Join(strictErrs...))
	}
	if obj.GetName() == "" {
		return nil, "", fmt.Errorf("%s without metadata.name", tm.Kind)
	}
	return obj, tm.Kind, nil
}

// rendering is one kustomization's output, decoded.
type rendering struct {
	dir             string
	objects         []string // "Kind name", in output order
	configMaps      map[string]*corev1.ConfigMap
	serviceAccounts map[string]*corev1.ServiceAccount
	jobs            map[string]*batchv1.Job
	cronJobs        map[string]*batchv1.CronJob
}

func decodeRendering(dir string, docs [][]byte) (*rendering, error) {
	r := &rendering{
		dir:             dir,
		configMaps:      map[string]*corev1.ConfigMap{},
		serviceAccounts: map[string]*corev1.ServiceAccount{},
		jobs:            map[string]*batchv1.Job{},
		cronJobs:        map[string]*batchv1.CronJob{},
	}
	var errs []error
	for i, doc := range docs {
		obj, kind, err := decodeStrict(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %w", dir, i+1, err))
			continue
		}
		r.objects = append(r.objects, kind+" "+obj.GetName())
		switch o := obj.(type) {
		case *batchv1.Job:
			r.jobs[o.Name] = o
		case *batchv1.CronJob:
			r.cronJobs[o.Name] = o
		case *corev1.ConfigMap:
			r.configMaps[o.Name] = o
		case *corev1.ServiceAccount:
			r.serviceAccounts[o.Name] = o
		}
	}
	return r, errors.Join(errs...)
}

// report records one broken rule.
type report func(format string, args ...any)

func (rep report) at(where string) report {
	return func(format string, args ...any) { rep(where+": "+format, args...) }
}

// checkRendering checks every rule on r, rendered for v.
func checkRendering(r *rendering, v variant, rep report) {
	rep = rep.at(r.dir)
	got := slices.Clone(r.objects)
	slices.Sort(got)
	if !slices.Equal(got, expectedObjects) {
		rep("objects %q, want %q (each once)", got, expectedObjects)
	}
	cm := r.configMaps["splash-config"]
	job := r.jobs["splash-encode"]
	nightly := r.cronJobs["splash-nightly"]
	finalize := r.cronJobs["splash-finalize"]
	if cm == nil || job == nil || nightly == nil || finalize == nil {
		return // reported above
	}
	shards := checkConfig(cm, v, rep.at("ConfigMap splash-config"))

	encodeOutput := checkEncodeJobSpec(r, &job.Spec, shards, v, rep.at("Job splash-encode"))

	rep1 := rep.at("CronJob splash-nightly")
	if nightly.Spec.Schedule != "0 2 * * *" {
		rep1("schedule %q, want \"0 2 * * *\"", nightly.Spec.Schedule)
	}
	if nightly.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		rep1("concurrencyPolicy %q, want Forbid (one night's run at a time)", nightly.Spec.ConcurrencyPolicy)
	}
	if nightly.Spec.Suspend != nil && *nightly.Spec.Suspend {
		rep1("suspended")
	}
	if !equality.Semantic.DeepEqual(nightly.Spec.JobTemplate.Spec, job.Spec) {
		rep1("jobTemplate.spec differs from Job splash-encode's spec (the replacement that copies it is missing or ran before a patch)")
	}
	checkEncodeJobSpec(r, &nightly.Spec.JobTemplate.Spec, shards, v, rep1.at("jobTemplate"))

	checkFinalize(r, finalize, encodeOutput, rep.at("CronJob splash-finalize"))
}

// credentialName matches environment variable and ConfigMap key names that
// hold credentials; credentialValue matches values that look like one.
var (
	credentialName  = regexp.MustCompile(`(?i)(SECRET|PASSWORD|PASSWD|TOKEN|ACCESS_KEY|ACCESS_KEY_ID|PRIVATE_KEY|CREDENTIAL|SESSION|API_KEY|APIKEY)`)
	credentialValue = regexp.MustCompile(`(AKIA|ASIA)[0-9A-Z]{16}|-----BEGIN|(?i)aws_secret|(?i)secret_access_key`)
)

var requiredSettings = []string{"SPLASH_MODEL", "SPLASH_INPUT", "SPLASH_OUTPUT", "SPLASH_DEVICE", "SPLASH_PUSHGATEWAY", "SHARD_COUNT"}

// checkConfig checks the ConfigMap and returns SHARD_COUNT (0 when bad).
func checkConfig(cm *corev1.ConfigMap, v variant, rep report) int {
	for _, k := range requiredSettings {
		if strings.TrimSpace(cm.Data[k]) == "" {
			rep("%s missing or empty", k)
		}
	}
	for k, val := range cm.Data {
		if credentialName.MatchString(k) || credentialValue.MatchString(val) {
			rep("%s looks like a credential: credentials come from the SDKs' default chains (service account identity or a Secret), never the ConfigMap", k)
		}
	}
	if len(cm.BinaryData) > 0 {
		rep("binaryData is not used by splash")
	}
	if got := cm.Data["SPLASH_DEVICE"]; got != v.device {
		rep("SPLASH_DEVICE %q, want %q", got, v.device)
	}
	n, err := strconv.Atoi(cm.Data["SHARD_COUNT"])
	if err != nil || n < 1 {
		rep("SHARD_COUNT %q is not a positive integer", cm.Data["SHARD_COUNT"])
		return 0
	}
	return n
}

// policyAction is what podFailurePolicy p does with a failed pod whose
// container exited with code and that has the conditions conds: the action
// of the first rule that matches, as the Job controller evaluates them, and
// that rule. ok is false when no rule matches (the failure is counted
// against the backoff limit, as with Count).
func policyAction(p *batchv1.PodFailurePolicy, container string, code int32, conds ...corev1.PodConditionType) (action batchv1.PodFailurePolicyAction, rule *batchv1.PodFailurePolicyRule, ok bool) {
	if p == nil {
		return "", nil, false
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		if e := r.OnExitCodes; e != nil {
			if e.ContainerName != nil && *e.ContainerName != container {
				continue
			}
			in := slices.Contains(e.Values, code)
			if (e.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && in) ||
				(e.Operator == batchv1.PodFailurePolicyOnExitCodesOpNotIn && !in && code != 0) {
				return r.Action, r, true
			}
		}
		for _, pc := range r.OnPodConditions {
			if slices.Contains(conds, pc.Type) && (pc.Status == "" || pc.Status == corev1.ConditionTrue) {
				return r.Action, r, true
			}
		}
	}
	return "", nil, false
}

// checkEncodeJobSpec checks an encode Job's spec (the Job's or the nightly
// CronJob's) and returns the --output of its container.
func checkEncodeJobSpec(r *rendering, spec *batchv1.JobSpec, shards int, v variant, rep report) string {
	if spec.CompletionMode == nil || *spec.CompletionMode != batchv1.IndexedCompletion {
		rep("completionMode is not Indexed")
	}
	switch {
	case spec.Completions == nil || spec.Parallelism == nil:
		rep("completions and parallelism must both be set to SHARD_COUNT")
	case int(*spec.Completions) != shards || int(*spec.Parallelism) != shards:
		rep("completions %d and parallelism %d, want both equal to SHARD_COUNT %d", *spec.Completions, *spec.Parallelism, shards)
	}
	if spec.BackoffLimitPerIndex == nil || *spec.BackoffLimitPerIndex < 1 {
		rep("backoffLimitPerIndex not set (want at least 1: retries per shard)")
	}
	if spec.BackoffLimit != nil {
		rep("backoffLimit set: with backoffLimitPerIndex it would cap the retries of all shards together")
	}
	switch {
	case spec.MaxFailedIndexes == nil:
		rep("maxFailedIndexes not set")
	case *spec.MaxFailedIndexes < 0 || (spec.Completions != nil && *spec.MaxFailedIndexes > *spec.Completions):
		rep("maxFailedIndexes %d not within 0..completions (the API server refuses it)", *spec.MaxFailedIndexes)
	}
	if spec.PodReplacementPolicy == nil || *spec.PodReplacementPolicy != batchv1.Failed {
		rep("podReplacementPolicy is not Failed (a replacement pod could write a shard while the old one still does)")
	}
	if spec.TTLSecondsAfterFinished == nil {
		rep("ttlSecondsAfterFinished not set")
	}

	p := spec.PodFailurePolicy
	if p == nil {
		rep("no podFailurePolicy")
	}
	if a, rule, ok := policyAction(p, containerName, 3); !ok || a != batchv1.PodFailurePolicyActionFailIndex {
		rep("podFailurePolicy: exit code 3 (bad data or model) of container %s is not FailIndex (got %q)", containerName, a)
	} else if rule.OnExitCodes.ContainerName == nil || *rule.OnExitCodes.ContainerName != containerName {
		rep("podFailurePolicy: the FailIndex rule for exit code 3 does not name container %s", containerName)
	}
	if a, _, ok := policyAction(p, containerName, 2); !ok || (a != batchv1.PodFailurePolicyActionFailIndex && a != batchv1.PodFailurePolicyActionFailJob) {
		rep("podFailurePolicy: exit code 2 (usage or settings) of container %s is retried (got %q, want FailJob or FailIndex)", containerName, a)
	}
	for _, code := range []int32{1, 4} {
		if a, _, ok := policyAction(p, containerName, code); ok && a != batchv1.PodFailurePolicyActionCount {
			rep("podFailurePolicy: exit code %d of container %s is %s, want it counted and retried", code, containerName, a)
		}
	}
	// A pod evicted or preempted: SIGTERM (splash exits 4), or SIGKILL after
	// the grace period (137).
	for _, code := range []int32{4, 137, 143} {
		if a, _, ok := policyAction(p, containerName, code, corev1.DisruptionTarget); !ok || a != batchv1.PodFailurePolicyActionIgnore {
			rep("podFailurePolicy: a pod with condition DisruptionTarget exiting %d is not Ignore (got %q)", code, a)
		}
	}

	return checkEncodePod(r, &spec.Template, shards, v, rep.at("pod"))
}

// encodeFlags and finalizeFlags are the flags the manifests may pass, with
// whether each is required. Credentials are never flags.
var (
	encodeFlags = map[string]bool{
		"--model": true, "--input": true, "--output": true, "--device": true,
		"--shard-count": true, "--metrics-addr": true, "--pushgateway": true, "--log-format": true,
		"--finalize-when-complete": true,
	}
	finalizeFlags = map[string]bool{"--output": true, "--input": true}
)

// checkEncodePod checks an encode pod template and returns its --output.
func checkEncodePod(r *rendering, tmpl *corev1.PodTemplateSpec, shards int, v variant, rep report) string {
	pod := &tmpl.Spec
	c, env := checkCommonPod(r, pod, rep)
	if c == nil {
		return ""
	}
	crep := rep.at("container " + containerName)

	if _, tag := splitImage(c.Image); tag != v.imageTag {
		crep("image %q, want tag %q", c.Image, v.imageTag)
	}

	flags := checkArgs(c.Args, env, "encode", encodeFlags, crep)
	if got, want := flags["--device"], v.device; got != want {
		crep("--device %q, want %q", got, want)
	}
	if got, want := flags["--shard-count"], strconv.Itoa(shards); got != want {
		crep("--shard-count %q, want SHARD_COUNT %s (the Job's completions)", got, want)
	}
	if got := flags["--log-format"]; got != "json" {
		crep("--log-format %q, want json", got)
	}
	// The last index to finish writes _SUCCESS: no finalize step by hand.
	if got := flags["--finalize-when-complete"]; got != "true" {
		crep("--finalize-when-complete %q, want true (written --finalize-when-complete=true: a bool flag takes no separate value)", got)
	}
	if in, out := flags["--input"], flags["--output"]; in != "" && in == out {
		crep("--input and --output are both %q", in)
	}
	for _, e := range c.Env {
		if e.Name == "JOB_COMPLETION_INDEX" {
			crep("sets JOB_COMPLETION_INDEX: the Job controller sets it, one per shard")
		}
	}

	// Metrics: --metrics-addr listens on the port named metrics.
	var port *corev1.ContainerPort
	for i := range c.Ports {
		if c.Ports[i].Name == "metrics" {
			port = &c.Ports[i]
		}
	}
	if port == nil || port.ContainerPort != metricsPort {
		crep("no container port %d named metrics", metricsPort)
	}
	if addr := flags["--metrics-addr"]; addr != "" {
		_, p, found := strings.Cut(addr, ":")
		if !found || p != strconv.Itoa(metricsPort) {
			crep("--metrics-addr %q does not listen on port %d", addr, metricsPort)
		}
	}

	// The model: on a read-only volume from the PVC splash-models.
	if m := flags["--model"]; m != "" {
		mount := mountFor(c, m)
		if mount == nil {
			crep("--model %q is on no volume mount", m)
		} else {
			if !mount.ReadOnly {
				crep("the model's mount %s is not readOnly", mount.MountPath)
			}
			vol := volume(pod, mount.Name)
			if vol == nil || vol.PersistentVolumeClaim == nil || vol.PersistentVolumeClaim.ClaimName != "splash-models" || !vol.PersistentVolumeClaim.ReadOnly {
				crep("the model's volume %q is not the read-only PVC splash-models", mount.Name)
			}
		}
	}

	// Resources and the GPU.
	res := c.Resources
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := res.Requests[name]
		lim, hasLim := res.Limits[name]
		if !hasReq || !hasLim {
			crep("%s requests and limits must both be set", name)
		} else if req.Cmp(lim) > 0 {
			crep("%s request %s above its limit %s", name, req.String(), lim.String())
		}
	}
	gpuLimit, hasGPU := res.Limits[gpuResource]
	if _, ok := res.Requests[gpuResource]; ok && !v.gpu {
		crep("requests %s on the CPU variant", gpuResource)
	}
	switch {
	case v.gpu && (!hasGPU || gpuLimit.Cmp(resource.MustParse("1")) != 0):
		crep("limits %s %v, want 1", gpuResource, gpuLimitString(gpuLimit, hasGPU))
	case !v.gpu && hasGPU:
		crep("limits %s on the CPU variant", gpuResource)
	}
	gpuToleration := slices.ContainsFunc(pod.Tolerations, func(t corev1.Toleration) bool {
		return t.Key == string(gpuResource) && t.Operator == corev1.TolerationOpExists && t.Effect == corev1.TaintEffectNoSchedule
	})
	anyGPUToleration := slices.ContainsFunc(pod.Tolerations, func(t corev1.Toleration) bool { return t.Key == string(gpuResource) })
	switch {
	case v.gpu && !gpuToleration:
		rep("no toleration {key: %s, operator: Exists, effect: NoSchedule}", gpuResource)
	case !v.gpu && anyGPUToleration:
		rep("tolerates %s on the CPU variant", gpuResource)
	}
	return flags["--output"]
}

func gpuLimitString(q resource.Quantity, ok bool) string {
	if !ok {
		return "missing"
	}
	return q.String()
}

// checkFinalize checks the finalize CronJob: a template (suspended) whose pod
// follows the common rules, needs no GPU, runs the cpu image and finalizes
// the encode Job's output.
func checkFinalize(r *rendering, cj *batchv1.CronJob, encodeOutput string, rep report) {
	if cj.Spec.Suspend == nil || !*cj.Spec.Suspend {
		rep("not suspended: it must run only after an encode Job has completed")
	}
	pod := &cj.Spec.JobTemplate.Spec.Template.Spec
	prep := rep.at("pod")
	c, env := checkCommonPod(r, pod, prep)
	if c == nil {
		return
	}
	crep := prep.at("container " + containerName)
	if _, tag := splitImage(c.Image); tag != "cpu" {
		crep("image %q: finalize needs no GPU and the cuda image needs one, want tag cpu", c.Image)
	}
	if _, ok := c.Resources.Limits[gpuResource]; ok {
		crep("limits %s", gpuResource)
	}
	flags := checkArgs(c.Args, env, "finalize", finalizeFlags, crep)
	if encodeOutput != "" && flags["--output"] != encodeOutput {
		crep("--output %q, want the encode Job's %q", flags["--output"], encodeOutput)
	}
}

// checkCommonPod checks what every splash pod must satisfy and returns the
// container splash (nil when missing) and the environment its args are
// expanded with.
func checkCommonPod(r *rendering, pod *corev1.PodSpec, rep report) (*corev1.Container, map[string]*string) {
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		rep("restartPolicy %q, want Never (the Job retries, per shard)", pod.RestartPolicy)
	}
	if pod.ServiceAccountName != "splash" {
		rep("serviceAccountName %q, want splash", pod.ServiceAccountName)
	} else if r.serviceAccounts["splash"] == nil {
		rep("ServiceAccount splash is not in the rendering")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		rep("automountServiceAccountToken is not false (splash does not call the Kubernetes API)")
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		rep("uses a host namespace")
	}
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
		rep("no pod securityContext")
	}
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		rep("pod securityContext: runAsNonRoot is not true")
	}

	var splash *corev1.Container
	all := append(slices.Clone(pod.InitContainers), pod.Containers...)
	for i := range all {
		c := &all[i]
		if c.Name == containerName {
			splash = c
		}
		crep := rep.at("container " + c.Name)
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		// Container settings override the pod's.
		runAsUser, runAsNonRoot, seccomp := psc.RunAsUser, psc.RunAsNonRoot, psc.SeccompProfile
		if sc.RunAsUser != nil {
			runAsUser = sc.RunAsUser
		}
		if sc.RunAsNonRoot != nil {
			runAsNonRoot = sc.RunAsNonRoot
		}
		if sc.SeccompProfile != nil {
			seccomp = sc.SeccompProfile
		}
		if runAsUser == nil || *runAsUser != imageUser {
			crep("runAsUser is not %d (the images' user)", imageUser)
		}
		if runAsNonRoot == nil || !*runAsNonRoot {
			crep("runAsNonRoot is not true")
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			crep("seccompProfile is not RuntimeDefault")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			crep("allowPrivilegeEscalation is not false")
		}
		if sc.Privileged != nil && *sc.Privileged {
			crep("privileged")
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			crep("readOnlyRootFilesystem is not true")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			crep("capabilities do not drop ALL")
		} else if len(sc.Capabilities.Add) > 0 {
			crep("capabilities add %v", sc.Capabilities.Add)
		}
		checkCredentials(c, crep)
	}
	if splash == nil || !slices.ContainsFunc(pod.Containers, func(c corev1.Container) bool { return c.Name == containerName }) {
		rep("no container %s", containerName)
		return nil, nil
	}
	crep := rep.at("container " + containerName)

	// The environment the kubelet expands $(VAR) in args with: envFrom, then
	// env. A value from a Secret or a field is known to exist, not its value.
	env := map[string]*string{}
	for _, from := range splash.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm := r.configMaps[from.ConfigMapRef.Name]
			if cm == nil {
				crep("envFrom ConfigMap %q is not in the rendering", from.ConfigMapRef.Name)
				continue
			}
			for k, val := range cm.Data {
				env[from.Prefix+k] = &val
			}
		case from.SecretRef != nil:
			if from.SecretRef.Optional == nil || !*from.SecretRef.Optional {
				crep("envFrom Secret %q is not optional: the pod would not start without it, and the SDKs' default chains need none", from.SecretRef.Name)
			}
		}
	}
	for _, e := range splash.Env {
		if e.ValueFrom != nil {
			env[e.Name] = nil
		} else {
			env[e.Name] = &e.Value
		}
	}

	// Scratch: an emptyDir with a size limit, mounted at TMPDIR.
	tmpdir := "/tmp"
	if v, ok := env["TMPDIR"]; ok && v != nil {
		tmpdir = *v
	}
	m := mountFor(splash, tmpdir)
	if m == nil || m.MountPath != tmpdir {
		crep("no volume mounted at TMPDIR %s", tmpdir)
	} else if vol := volume(pod, m.Name); vol == nil || vol.EmptyDir == nil {
		crep("TMPDIR %s is not on an emptyDir scratch volume", tmpdir)
	} else if vol.EmptyDir.SizeLimit == nil || vol.EmptyDir.SizeLimit.Sign() <= 0 {
		crep("scratch emptyDir %q has no sizeLimit", vol.Name)
	} else if m.ReadOnly {
		crep("scratch mount %s is read-only", tmpdir)
	}
	return splash, env
}

// checkCredentials reports credentials in a container's args or plain env.
func checkCredentials(c *corev1.Container, rep report) {
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		if credentialValue.MatchString(a) || (strings.HasPrefix(a, "-") && credentialName.MatchString(strings.ReplaceAll(a, "-", "_"))) {
			rep("argument %q looks like a credential: credentials come from the SDKs' default chains, never flags", a)
		}
	}
	for _, e := range c.Env {
		switch {
		case credentialName.MatchString(e.Name) && e.ValueFrom == nil:
			rep("env %s has a literal value: take it from a Secret (valueFrom.secretKeyRef) or the pod's identity", e.Name)
		case credentialName.MatchString(e.Name) && e.ValueFrom.SecretKeyRef == nil:
			rep("env %s does not come from a Secret", e.Name)
		case credentialValue.MatchString(e.Value):
			rep("env %s holds what looks like a credential", e.Name)
		}
	}
}

// varRef is a Kubernetes $(VAR) reference in args.
var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

// expand expands $(VAR) references as the kubelet does; a reference to a
// variable that is not defined stays as it is and is reported, as is one
// whose value comes from a Secret or field (unknown here).
func expand(s string, env map[string]*string, rep report) string {
	// $$ escapes a $.
	parts := strings.Split(s, "$$")
	for i, p := range parts {
		parts[i] = varRef.ReplaceAllStringFunc(p, func(ref string) string {
			name := ref[2 : len(ref)-1]
			v, ok := env[name]
			switch {
			case !ok:
				rep("argument %q refers to $(%s), which is not defined: it would be passed as it is", s, name)
				return ref
			case v == nil:
				rep("argument %q refers to $(%s), whose value is not in the manifests", s, name)
				return ref
			}
			return *v
		})
	}
	return strings.Join(parts, "$")
}

// checkArgs expands args, checks the subcommand and the flags (each allowed
// flag at most once, each required one present with a value) and returns the
// flags' values.
func checkArgs(args []string, env map[string]*string, sub string, allowed map[string]bool, rep report) map[string]string {
	flags := map[string]string{}
	var expanded []string
	for _, a := range args {
		expanded = append(expanded, expand(a, env, rep))
	}
	if len(expanded) == 0 || expanded[0] != sub {
		rep("args %q do not start with the subcommand %s", args, sub)
		return flags
	}
	for i := 1; i < len(expanded); i++ {
		a := expanded[i]
		name, value, hasValue := strings.Cut(a, "=")
		if !strings.HasPrefix(name, "--") {
			rep("argument %q is not a flag", a)
			continue
		}
		if _, ok := allowed[name]; !ok {
			rep("unexpected flag %s", name)
		}
		if !hasValue {
			if i+1 >= len(expanded) || strings.HasPrefix(expanded[i+1], "--") {
				rep("flag %s has no value", name)
				continue
			}
			i++
			value = expanded[i]
		}
		if _, dup := flags[name]; dup {
			rep("flag %s given twice", name)
		}
		flags[name] = value
	}
	for name, required := range allowed {
		if required && strings.TrimSpace(flags[name]) == "" {
			rep("no %s", name)
		}
	}
	return flags
}

// mountFor returns the volume mount of c holding path (the deepest one).
func mountFor(c *corev1.Container, path string) *corev1.VolumeMount {
	var best *corev1.VolumeMount
	for i := range c.VolumeMounts {
		m := &c.VolumeMounts[i]
		mp := strings.TrimSuffix(m.MountPath, "/")
		if (path == m.MountPath || path == mp || strings.HasPrefix(path, mp+"/")) && (best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = m
		}
	}
	return best
}

func volume(pod *corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

// splitImage splits an image reference into its repository and tag.
func splitImage(image string) (repo, tag string) {
	image, _, _ = strings.Cut(image, "@")
	slash := strings.LastIndex(image, "/")
	if colon := strings.LastIndex(image, ":"); colon > slash {
		return image[:colon], image[colon+1:]
	}
	return image, ""
}

// renderAll renders and decodes every kustomization; a failure to render or
// decode ends the test.
func renderAll(t *testing.T) map[string]*rendering {
	t.Helper()
	out := map[string]*rendering{}
	for _, dir := range kustomizations(t) {
		docs, err := render(dir)
		if err != nil {
			t.Fatal(err)
		}
		r, err := decodeRendering(dir, docs)
		if err != nil {
			t.Fatal(err)
		}
		out[dir] = r
	}
	return out
}

func TestManifests(t *testing.T) {
	for dir, r := range renderAll(t) {
		t.Run(dir, func(t *testing.T) {
			v, ok := variants[dir]
			if !ok {
				t.Fatalf("kustomization %s has no entry in variants (manifests_test.go): say what it must render", dir)
			}
			checkRendering(r, v, t.Errorf)
		})
	}
	for dir := range variants {
		if _, err := os.Stat(filepath.Join(dir, "kustomization.yaml")); err != nil {
			t.Errorf("variants names %s: %v", dir, err)
		}
	}
}

// TestManifestRulesCatchBreakage breaks the base's rendering (and the cpu
// overlay's) in one way at a time and checks that the rules report it.
func TestManifestRulesCatchBreakage(t *testing.T) {
	docs := map[string][][]byte{}
	for _, dir := range []string{"base", "overlays/cpu"} {
		d, err := render(dir)
		if err != nil {
			t.Fatal(err)
		}
		docs[dir] = d
	}
	encodePod := func(r *rendering) *corev1.PodSpec { return &r.jobs["splash-encode"].Spec.Template.Spec }
	encodeContainer := func(r *rendering) *corev1.Container { return &encodePod(r).Containers[0] }
	setArg := func(r *rendering, flag, value string) {
		c := encodeContainer(r)
		i := slices.Index(c.Args, flag)
		c.Args[i+1] = value
	}
	removeArg := func(r *rendering, flag string) {
		c := encodeContainer(r)
		i := slices.Index(c.Args, flag)
		c.Args = slices.Delete(c.Args, i, i+2)
	}
	ptr := func(b bool) *bool { return &b }
	i32 := func(n int32) *int32 { return &n }
	i64 := func(n int64) *int64 { return &n }

	cases := []struct {
		name   string
		dir    string
		as     string // check as this variant instead of dir's own
		mutate func(r *rendering)
		want   string // a part of one reported problem
	}{
		{"no GPU limit", "base", "", func(r *rendering) { delete(encodeContainer(r).Resources.Limits, gpuResource) }, "limits nvidia.com/gpu missing, want 1"},
		{"two GPUs", "base", "", func(r *rendering) { encodeContainer(r).Resources.Limits[gpuResource] = resource.MustParse("2") }, "limits nvidia.com/gpu 2, want 1"},
		{"GPU on cpu", "overlays/cpu", "", func(r *rendering) { encodeContainer(r).Resources.Limits[gpuResource] = resource.MustParse("1") }, "limits nvidia.com/gpu on the CPU variant"},
		{"cpu rendering checked as GPU", "overlays/cpu", "base", func(r *rendering) {}, "no toleration"},
		{"no toleration", "base", "", func(r *rendering) { encodePod(r).Tolerations = nil }, "no toleration"},
		{"toleration on cpu", "overlays/cpu", "", func(r *rendering) {
			encodePod(r).Tolerations = []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists}}
		}, "tolerates nvidia.com/gpu"},
		{"restartPolicy OnFailure", "base", "", func(r *rendering) { encodePod(r).RestartPolicy = corev1.RestartPolicyOnFailure }, "restartPolicy \"OnFailure\""},
		{"no backoffLimitPerIndex", "base", "", func(r *rendering) { r.jobs["splash-encode"].Spec.BackoffLimitPerIndex = nil }, "backoffLimitPerIndex not set"},
		{"maxFailedIndexes above completions", "base", "", func(r *rendering) { r.jobs["splash-encode"].Spec.MaxFailedIndexes = i32(100) }, "maxFailedIndexes 100"},
		{"podReplacementPolicy", "base", "", func(r *rendering) {
			p := batchv1.TerminatingOrFailed
			r.jobs["splash-encode"].Spec.PodReplacementPolicy = &p
		}, "podReplacementPolicy is not Failed"},
		{"FailIndex on 4 instead of 3", "base", "", func(r *rendering) {
			for i := range r.jobs["splash-encode"].Spec.PodFailurePolicy.Rules {
				if rl := &r.jobs["splash-encode"].Spec.PodFailurePolicy.Rules[i]; rl.Action == batchv1.PodFailurePolicyActionFailIndex {
					rl.OnExitCodes.Values = []int32{4}
				}
			}
		}, "exit code 3 (bad data or model) of container splash is not FailIndex"},
		{"FailIndex shadowed by Count", "base", "", func(r *rendering) {
			p := r.jobs["splash-encode"].Spec.PodFailurePolicy
			p.Rules = append([]batchv1.PodFailurePolicyRule{{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
				Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{3}}}}, p.Rules...)
		}, "exit code 3 (bad data or model) of container splash is not FailIndex"},
		{"FailIndex for any container", "base", "", func(r *rendering) {
			for i := range r.jobs["splash-encode"].Spec.PodFailurePolicy.Rules {
				if rl := &r.jobs["splash-encode"].Spec.PodFailurePolicy.Rules[i]; rl.OnExitCodes != nil {
					rl.OnExitCodes.ContainerName = nil
				}
			}
		}, "does not name container splash"},
		{"no Ignore on DisruptionTarget", "base", "", func(r *rendering) {
			p := r.jobs["splash-encode"].Spec.PodFailurePolicy
			p.Rules = slices.DeleteFunc(p.Rules, func(rl batchv1.PodFailurePolicyRule) bool { return rl.Action == batchv1.PodFailurePolicyActionIgnore })
		}, "DisruptionTarget exiting 4 is not Ignore"},
		{"exit 4 fails the index", "base", "", func(r *rendering) {
			p := r.jobs["splash-encode"].Spec.PodFailurePolicy
			p.Rules = append(p.Rules, batchv1.PodFailurePolicyRule{Action: batchv1.PodFailurePolicyActionFailIndex, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
				Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{4}}})
		}, "exit code 4 of container splash is FailIndex"},
		{"exit 2 retried", "base", "", func(r *rendering) {
			p := r.jobs["splash-encode"].Spec.PodFailurePolicy
			p.Rules = slices.DeleteFunc(p.Rules, func(rl batchv1.PodFailurePolicyRule) bool {
				return rl.OnExitCodes != nil && slices.Contains(rl.OnExitCodes.Values, 2)
			})
		}, "exit code 2 (usage or settings) of container splash is retried"},
		{"root user", "base", "", func(r *rendering) { encodeContainer(r).SecurityContext.RunAsUser = i64(0) }, "runAsUser is not 65532"},
		{"pod user only", "base", "", func(r *rendering) {
			encodeContainer(r).SecurityContext.RunAsUser = nil
			encodePod(r).SecurityContext.RunAsUser = i64(1000)
		}, "runAsUser is not 65532"},
		{"runAsNonRoot false", "base", "", func(r *rendering) { encodeContainer(r).SecurityContext.RunAsNonRoot = ptr(false) }, "runAsNonRoot is not true"},
		{"writable root", "base", "", func(r *rendering) { encodeContainer(r).SecurityContext.ReadOnlyRootFilesystem = ptr(false) }, "readOnlyRootFilesystem is not true"},
		{"privilege escalation", "base", "", func(r *rendering) { encodeContainer(r).SecurityContext.AllowPrivilegeEscalation = nil }, "allowPrivilegeEscalation is not false"},
		{"capabilities kept", "base", "", func(r *rendering) { encodeContainer(r).SecurityContext.Capabilities = nil }, "capabilities do not drop ALL"},
		{"no seccomp", "base", "", func(r *rendering) { encodePod(r).SecurityContext.SeccompProfile = nil }, "seccompProfile is not RuntimeDefault"},
		{"no scratch", "base", "", func(r *rendering) {
			c := encodeContainer(r)
			c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/tmp" })
		}, "no volume mounted at TMPDIR /tmp"},
		{"scratch without sizeLimit", "base", "", func(r *rendering) { volume(encodePod(r), "scratch").EmptyDir.SizeLimit = nil }, "has no sizeLimit"},
		{"completions not SHARD_COUNT", "base", "", func(r *rendering) { r.jobs["splash-encode"].Spec.Completions = i32(9) }, "completions 9 and parallelism 8, want both equal to SHARD_COUNT 8"},
		{"SHARD_COUNT changed alone", "base", "", func(r *rendering) { r.configMaps["splash-config"].Data["SHARD_COUNT"] = "16" }, "want both equal to SHARD_COUNT 16"},
		{"no --shard-count", "base", "", func(r *rendering) { removeArg(r, "--shard-count") }, "no --shard-count"},
		{"literal --shard-count", "base", "", func(r *rendering) { setArg(r, "--shard-count", "4") }, "--shard-count \"4\", want SHARD_COUNT 8"},
		{"no --metrics-addr", "base", "", func(r *rendering) { removeArg(r, "--metrics-addr") }, "no --metrics-addr"},
		{"no --finalize-when-complete", "base", "", func(r *rendering) {
			c := encodeContainer(r)
			c.Args = slices.DeleteFunc(c.Args, func(a string) bool { return a == "--finalize-when-complete=true" })
		}, "no --finalize-when-complete"},
		{"--finalize-when-complete off", "base", "", func(r *rendering) {
			c := encodeContainer(r)
			c.Args[slices.Index(c.Args, "--finalize-when-complete=true")] = "--finalize-when-complete=false"
		}, "--finalize-when-complete \"false\", want true"},
		{"metrics on another port", "base", "", func(r *rendering) { setArg(r, "--metrics-addr", ":8080") }, "does not listen on port 9090"},
		{"undefined variable", "base", "", func(r *rendering) { setArg(r, "--model", "$(SPLASH_MODELS)") }, "$(SPLASH_MODELS), which is not defined"},
		{"wrong device", "overlays/cpu", "", func(r *rendering) { setArg(r, "--device", "cuda") }, "--device \"cuda\", want \"cpu\""},
		{"shard index by hand", "base", "", func(r *rendering) {
			c := encodeContainer(r)
			c.Env = append(c.Env, corev1.EnvVar{Name: "JOB_COMPLETION_INDEX", Value: "0"})
		}, "sets JOB_COMPLETION_INDEX"},
		{"secret key in env", "base", "", func(r *rendering) {
			c := encodeContainer(r)
			c.Env = append(c.Env, corev1.EnvVar{Name: "AWS_SECRET_ACCESS_KEY", Value: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"})
		}, "env AWS_SECRET_ACCESS_KEY has a literal value"},
		{"access key in args", "base", "", func(r *rendering) {
			c := encodeContainer(r)
			c.Args = append(c.Args, "--aws-access-key-id", "AKIAIOSFODNN7EXAMPLE")
		}, "looks like a credential"},
		{"credential in ConfigMap", "base", "", func(r *rendering) { r.configMaps["splash-config"].Data["AWS_SECRET_ACCESS_KEY"] = "x" }, "AWS_SECRET_ACCESS_KEY looks like a credential"},
		{"required Secret", "base", "", func(r *rendering) {
			for _, f := range encodeContainer(r).EnvFrom {
				if f.SecretRef != nil {
					f.SecretRef.Optional = nil
				}
			}
		}, "is not optional"},
		{"model writable", "base", "", func(r *rendering) {
			for i := range encodeContainer(r).VolumeMounts {
				encodeContainer(r).VolumeMounts[i].ReadOnly = false
			}
		}, "the model's mount /models is not readOnly"},
		{"CronJob drifts", "base", "", func(r *rendering) { encodeContainer(r).Image = "ghcr.io/splash-encode/splash:cuda-old" }, "jobTemplate.spec differs from Job splash-encode's spec"},
		{"nightly not Forbid", "base", "", func(r *rendering) { r.cronJobs["splash-nightly"].Spec.ConcurrencyPolicy = batchv1.AllowConcurrent }, "concurrencyPolicy \"Allow\""},
		{"finalize scheduled", "base", "", func(r *rendering) { r.cronJobs["splash-finalize"].Spec.Suspend = ptr(false) }, "CronJob splash-finalize: not suspended"},
		{"finalize as root", "base", "", func(r *rendering) {
			r.cronJobs["splash-finalize"].Spec.JobTemplate.Spec.Template.Spec.SecurityContext.RunAsNonRoot = nil
		}, "CronJob splash-finalize: pod: pod securityContext: runAsNonRoot is not true"},
		{"finalize elsewhere", "base", "", func(r *rendering) {
			c := &r.cronJobs["splash-finalize"].Spec.JobTemplate.Spec.Template.Spec.Containers[0]
			c.Args = []string{"finalize", "--output", "s3://other/"}
		}, "--output \"s3://other/\", want the encode Job's"},
		{"missing ServiceAccount", "base", "", func(r *rendering) {
			delete(r.serviceAccounts, "splash")
			r.objects = slices.DeleteFunc(r.objects, func(s string) bool { return s == "ServiceAccount splash" })
		}, "ServiceAccount splash is not in the rendering"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := decodeRendering(tc.dir, docs[tc.dir])
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(r)
			as := tc.dir
			if tc.as != "" {
				as = tc.as
			}
			var problems []string
			checkRendering(r, variants[as], func(format string, args ...any) {
				problems = append(problems, fmt.Sprintf(format, args...))
			})
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("no problem containing %q; got:\n%s", tc.want, strings.Join(problems, "\n"))
			}
		})
	}
}

// TestDecodeStrict checks that decoding refuses what an API server with
// strict field validation refuses, and kinds the rules do not know.
func TestDecodeStrict(t *testing.T) {
	const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
	const job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n"
	for _, tc := range []struct {
		name, doc string
		ok        bool
	}{
		{"config map", cm + "data:\n  A: b\n", true},
		{"job", job, true},
		{"unknown field", cm + "date:\n  A: b\n", false},
		{"unknown nested field", job + "      restartPolicyy: Never\n", false},
		{"wrong case", "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  Completions: 2\n", false},
		{"duplicate key", cm + "data:\n  A: b\n  A: c\n", false},
		{"wrong type", "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  completions: \"8\"\n", false},
		{"unknown kind", "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n", false},
		{"old apiVersion", "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata:\n  name: c\n", false},
		{"no name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeStrict([]byte(tc.doc))
			if (err == nil) != tc.ok {
				t.Errorf("decodeStrict: error %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
