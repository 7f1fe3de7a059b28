// Package deploy holds what runs splash outside a developer's shell: the
// container images (the Dockerfile at the repository root, targets cpu and
// cuda) and the Kubernetes manifests (kustomize): base/ (the GPU variant: the
// Indexed Job splash-encode, the nightly CronJob splash-nightly, the suspended
// finalize template splash-finalize, the ConfigMap splash-config and the
// ServiceAccount splash) and overlays/cpu (CPU-only). README.md has the flow.
//
// It has no Go code of its own. Its tests read those files and check what a
// build cannot:
//
//   - dockerfile_test.go parses the Dockerfile (logical lines, stages) and
//     checks the stage names, pinned base images, the non-root user of each
//     runtime image, its entrypoint and its ONNX Runtime and NVIDIA settings,
//     so that a broken image is caught on machines without Docker.
//   - manifests_test.go renders base/ and every overlay in-process with
//     kustomize (sigs.k8s.io/kustomize/api/krusty), decodes every object
//     strictly into its k8s.io/api type (unknown, duplicate or mis-cased
//     fields and unknown kinds fail) and checks the rules: Indexed Job with
//     completions == parallelism == SHARD_COUNT, backoffLimitPerIndex,
//     podFailurePolicy (FailIndex on exit code 3, Ignore on DisruptionTarget),
//     podReplacementPolicy Failed, restartPolicy Never, the nightly CronJob's
//     job spec equal to the Job's, non-root user 65532 with a read-only root
//     file system, no privilege escalation and no capabilities, an emptyDir
//     scratch at TMPDIR, the GPU limit and toleration only outside the cpu
//     overlay, the CLI flags, and no credentials in args, env or the
//     ConfigMap. Its breakage test shows that each rule reports a break.
package deploy
