// Package deploy holds what runs splash outside a developer's shell: the
// container images (the Dockerfile at the repository root, targets cpu and
// cuda) and, with the issue "Beyond one machine", the Kubernetes manifests.
//
// It has no Go code of its own. Its tests read those files and check what a
// build cannot: dockerfile_test.go parses the Dockerfile (logical lines,
// stages) and checks the stage names, pinned base images, the non-root user
// of each runtime image, its entrypoint and its ONNX Runtime and NVIDIA
// settings, so that a broken image is caught on machines without Docker.
package deploy
