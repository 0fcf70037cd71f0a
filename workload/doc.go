// Package workload holds the figures of the Hiku evaluation workload, embedded
// in the binary, and small accessors over them.
//
// Provenance:
//
//   - functionbench.csv: for the 8 FunctionBench functions of the Hiku paper
//     (CCGrid 2025), the kind, the mean cold-start and warm-start latency in ms
//     on an OpenLambda worker (m5.xlarge, 4 vCPU, 16 GB; Table I of the paper,
//     20 runs) and the request payload its load test sends.
//   - azure2021-function-invocations.csv: invocation counts per function in the
//     Azure Functions Invocation Trace for two weeks of January 2021 (Zhang et
//     al., SOSP 2021; Azure Public Dataset, CC-BY 4.0), sorted from most to
//     least invoked: 424 functions, 1,980,951 invocations.
//   - azure2021-by-function-id.csv: the same 424 counts (same trace and
//     licence), ordered by the function's hashed id (HashFunction column of
//     the trace) in ascending order, the order numpy.unique gives and the
//     key order of evaluation/azure_function_probabilities.json in the Hiku
//     repository (saman-akbari/hiku-scheduler). Derived from that file: each
//     probability × 1,980,951 is an integer, and count / 1,980,951 gives the
//     file's float64 back exactly. The hashes themselves are left out;
//     "position" is the 1-based place in that order.
//
// The files are parsed once, on first use; the accessors return copies, so a
// caller may modify what it gets.
package workload
