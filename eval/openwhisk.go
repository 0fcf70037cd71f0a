package eval

// OpenWhiskPolicies are the default contenders of an evaluation through
// pullsched's OpenWhisk mode (`pullsched eval --openwhisk`, package
// owbridge/owsim): pull, the baseline, against ow-hash, the placement of
// OpenWhisk's own ShardingContainerPoolBalancer. In that mode an invoker's
// capacity is its memory in sandboxes (the scenario's memory over
// --sandbox-mb), as the balancer's memory semaphores count it, whatever a
// contender's @capacity suffix says.
func OpenWhiskPolicies() []string { return []string{"pull", "ow-hash"} }
