// Package cluster runs a whole pullsched deployment in one process: an
// embedded broker (or given brokers), the topics, a scheduler, the HTTP
// ingress, and N simulated OpenLambda workers each with its invokerbridge
// sidecar, eviction notices wired from each worker to its bridge. It is what
// `pullsched dev`, `pullsched eval` and the end-to-end tests start.
package cluster
