#!/usr/bin/env bash
# ci-openwhisk.sh: the OpenWhisk mode end to end in one process — the Hiku
# workload (quick) through a simulated OpenWhisk controller and invokers,
# the OpenWhisk bridge and a scheduler, pull against ow-hash, at the
# paper's memory (docs/OPENWHISK.md). Fails unless both contenders served
# requests without errors. About 30-60 s on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go run ./cmd/pullsched eval --openwhisk --quick --scenarios paper --out "$out" >"$out/table.txt"
cat "$out/table.txt"
python3 - "$out/report.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
seen = {r["policy"]: r for r in rows}
for p in ("pull", "ow-hash"):
    r = seen.get(p)
    if r is None:
        sys.exit(f"ci-openwhisk: no {p} row in report.json")
    if r["requests"] < 100 or r["errors"] != 0:
        sys.exit(f"ci-openwhisk: {p}: {r['requests']} requests, {r['errors']} errors")
print("ci-openwhisk: pull and ow-hash served the workload through the OpenWhisk mode without errors")
PY
