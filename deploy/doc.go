// Package deploy holds what runs the project outside `make run`: the Dockerfile, the compose
// file, the Kubernetes manifests (k8s/) and the healthcheck probe the image carries. Its tests
// parse the compose file with the compose specification's library and build every
// kustomization, decoding each object strictly into its Go type, so that a manifest that
// Kubernetes or an operator would refuse, a binary without a service, or a setting no binary
// reads fails `make test`.
package deploy
