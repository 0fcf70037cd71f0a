// Package owsim simulates an OpenWhisk deployment around pullsched's
// OpenWhisk mode, for `pullsched eval --openwhisk`: a controller that turns
// HTTP calls (POST /run/<fn>, as loadgen sends them) into blocking
// ActivationMessages and answers from their acks, and invokers that run the
// activations on a simulated worker (package workersim) and acknowledge
// them as OpenWhisk's ContainerProxy does. Start brings up the whole
// cluster — embedded broker, scheduler, bridge, invokers, controller — in
// one process.
package owsim
