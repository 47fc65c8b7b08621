// Package deploy validates the deployment files offline, without a container engine or a
// cluster: the Helm chart (helm lint/template, strict decoding into the Kubernetes API types,
// assertions on what operators rely on), docker-compose.yml (compose-go, the loader docker
// compose uses), the Dockerfile (dockerfile-utils) and every config shipped or rendered
// (`<daemon> --check-config`). It is a module of its own so the Kubernetes and compose
// libraries never enter the main module. Run it with `make deploy-test`.
package deploy
