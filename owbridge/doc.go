// Package owbridge is pullsched's OpenWhisk mode (`pullsched openwhisk`):
// it lets pullsched place every activation of an unchanged OpenWhisk
// deployment (controllers with the ShardingContainerPoolBalancer, invokers
// of releases 1.0 or 2.0).
//
// The only change on the OpenWhisk side is the controllers' Kafka topic
// prefix (whisk.kafka.topics.prefix, e.g. "owctl."). The controllers then
// write <prefix>invoker<N> and read <prefix>completed<C> and
// <prefix>health, while the invokers keep invoker<N>, completed<C> and
// health. The bridge joins the two sides and plays two of pullsched's
// roles at once:
//
//   - the ingress: it shows every controller one virtual invoker
//     (invoker0, pinging <prefix>health every second with a large fixed
//     userMemory), reads the ActivationMessages the controllers send it
//     on <prefix>invoker0 and publishes each as an Arrival (the message's
//     bytes, untouched, as the payload) on pullsched's arrivals topic,
//     with itself as the reply address;
//   - the sidecar of every real invoker (worker source "openwhisk", id
//     invoker<N>): it turns the invokers' pings on health into worker
//     heartbeats, writes each assignment's original ActivationMessage
//     bytes to invoker<N>, and turns the acknowledgements the invokers
//     write to completed<C> (read in a consumer group of its own) into
//     pullsched Completions, while forwarding every acknowledgement to
//     <prefix>completed<C> with only its instance (the virtual invoker's)
//     and isSystemError rewritten.
//
// When pullsched answers an activation it never assigned (queue full, no
// workers, timeout), the bridge writes the controller a synthetic
// acknowledgement in OpenWhisk's own shape before the controller's forced
// acknowledgement would fire. Health-test activations
// (whisk.system/invokerHealthTestAction<C>) skip the scheduler and go
// straight to a healthy invoker.
//
// The message types of this package are written from OpenWhisk's Scala
// definitions (connector/Message.scala, entity/InstanceId.scala and their
// neighbours); they decode both 1.0 and 2.0 shapes, ignore unknown
// members, and encode ids, transaction ids, "<n> B" sizes and
// epoch-millisecond times as OpenWhisk writes them. docs/OPENWHISK.md
// says how to deploy the bridge and what it does not cover.
package owbridge
