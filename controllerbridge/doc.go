// Package controllerbridge is pullsched's HTTP ingress (`pullsched
// controller`): it turns POST|GET /run/<fn> into an arrival on the arrivals
// topic, waits for the activation's result on its own results.<id> topic and
// answers the client; it also serves non-blocking activations
// (GET /activations/<id>), a Hiku-compatible admin API for workers, /status,
// /metrics, /healthz and /readyz. It never decides placement.
package controllerbridge
