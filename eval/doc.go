// Package eval reproduces the evaluation of the Hiku paper (CCGrid 2025) on
// fresh simulated clusters and reports the contenders side by side, per
// scenario, over several seeds.
//
// A contender is a policy with the in-flight capacity each worker's bridge
// advertises ("pull@unlimited", "pull@default", "chbl@16", or "pull" with the
// default capacity; see ParseContender). A scenario is the workers' sandbox
// memory (16g, paper, 4g; see Scenarios). For every scenario, seed and
// contender, in that order, Run asks a Starter for a fresh cluster (the dev
// cluster of package cluster in `pullsched eval`: an embedded broker and 5
// workersim workers modelling the paper's m5.xlarge, 4 cores, 512 MiB
// sandboxes), drives the loadgen workload against it with that seed (every
// contender of a scenario and seed gets the same workload), and stops it.
//
// The baseline of the relative figures is the first pull contender (pull
// with unlimited capacity if there is one), else the first. The ideal of a
// scenario and seed is the latency the baseline's requests would have had
// if each ran warm on an otherwise idle core (see Ideal); "gap closed" is
// the share of the baseline's distance to it a contender closes (see
// GapClosed).
//
// Run prints, per scenario, a table of every contender's figures over the
// seeds (mean ± sample standard deviation), with the ideal row, and writes
// into Config.Out:
//
//   - report.md: settings, and per scenario that table, every run's
//     figures, per-stage figures and the plots;
//   - report.json: {"rows": [...], "summary": [...]}: a row per run
//     (Row: "scenario", "memory_mb", "seed", "policy" (the contender's
//     label), "capacity", "requests", "mean_latency_ms", "p50_latency_ms",
//     "p99_latency_ms", "rps", "cold_start_rate", "load_cv", "errors",
//     "ideal_mean_latency_ms", "ideal_p50_latency_ms",
//     "ideal_p99_latency_ms"), and per scenario and contender the figures
//     over the seeds (Summary: "scenario", "memory_mb", "policy",
//     "capacity", "baseline", "seeds", and each figure as {"mean", "sd",
//     "min", "max", "n"}, with "mean_latency_vs_baseline",
//     "cold_start_rate_vs_baseline" and "gap_closed"); rates and relative
//     differences as fractions, latencies in ms of model time;
//   - loadgen-<scenario>-s<seed>-<contender>.json: each run's full loadgen
//     summary;
//   - latency-cdf-<scenario>.png: the latency CDF of every contender, and
//     the ideal one, for the scenario's first seed;
//   - worker-load-<scenario>.png: each contender's share of requests per
//     worker, workers ranked from busiest, averaged over the seeds.
package eval
