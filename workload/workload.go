package workload

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed functionbench.csv
var functionBenchCSV []byte

//go:embed azure2021-function-invocations.csv
var azureCSV []byte

//go:embed azure2021-by-function-id.csv
var azureByIDCSV []byte

// Profile is the measured behaviour of one FunctionBench function on an
// OpenLambda worker.
type Profile struct {
	// Name is the function's base name, e.g. "gzip_compression".
	Name string
	// Kind is the resource the function mostly uses: "cpu", "disk" or "network".
	Kind string
	// Cold is the mean end-to-end latency of a cold start.
	Cold time.Duration
	// Warm is the mean end-to-end latency of a warm start.
	Warm time.Duration
	// Payload is the JSON request body the load test sends to the function.
	Payload json.RawMessage
}

// ColdExtra is the part of a cold start that a warm start does not pay:
// Cold minus Warm, never negative.
func (p Profile) ColdExtra() time.Duration {
	if p.Cold < p.Warm {
		return 0
	}
	return p.Cold - p.Warm
}

var (
	parseOnce sync.Once
	profiles  []Profile
	counts    []int64
	countsID  []int64
	parseErr  error
)

func load() {
	parseOnce.Do(func() {
		profiles, parseErr = parseFunctionBench(functionBenchCSV)
		if parseErr != nil {
			return
		}
		counts, parseErr = parseAzure(azureCSV, "rank")
		if parseErr != nil {
			return
		}
		countsID, parseErr = parseAzure(azureByIDCSV, "position")
		if parseErr == nil {
			parseErr = checkSameCounts(counts, countsID)
		}
	})
}

// parseFunctionBench reads rows of function,kind,cold_ms,warm_ms,payload.
func parseFunctionBench(data []byte) ([]Profile, error) {
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("workload: functionbench.csv: %w", err)
	}
	if len(rows) < 1 || strings.Join(rows[0], ",") != "function,kind,cold_ms,warm_ms,payload" {
		return nil, fmt.Errorf("workload: functionbench.csv: unexpected header")
	}
	out := make([]Profile, 0, len(rows)-1)
	for i, r := range rows[1:] {
		cold, err := strconv.ParseFloat(r[2], 64)
		if err != nil {
			return nil, fmt.Errorf("workload: functionbench.csv row %d cold_ms: %w", i+2, err)
		}
		warm, err := strconv.ParseFloat(r[3], 64)
		if err != nil {
			return nil, fmt.Errorf("workload: functionbench.csv row %d warm_ms: %w", i+2, err)
		}
		if !json.Valid([]byte(r[4])) {
			return nil, fmt.Errorf("workload: functionbench.csv row %d: payload is not JSON", i+2)
		}
		out = append(out, Profile{
			Name:    r[0],
			Kind:    r[1],
			Cold:    time.Duration(cold * float64(time.Millisecond)),
			Warm:    time.Duration(warm * float64(time.Millisecond)),
			Payload: json.RawMessage(r[4]),
		})
	}
	return out, nil
}

// parseAzure reads rows of <key>,invocations, where key is "rank" or
// "position"; the key column is not used, row order is.
func parseAzure(data []byte, key string) ([]int64, error) {
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("workload: azure csv: %w", err)
	}
	if len(rows) < 1 || strings.Join(rows[0], ",") != key+",invocations" {
		return nil, fmt.Errorf("workload: azure csv: unexpected header")
	}
	out := make([]int64, 0, len(rows)-1)
	for i, r := range rows[1:] {
		n, err := strconv.ParseInt(r[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("workload: azure csv row %d: %w", i+2, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// checkSameCounts reports an error unless byID is a permutation of ranked.
func checkSameCounts(ranked, byID []int64) error {
	if len(ranked) != len(byID) {
		return fmt.Errorf("workload: azure csvs: %d ranked counts, %d by function id", len(ranked), len(byID))
	}
	seen := make(map[int64]int, len(ranked))
	for _, n := range ranked {
		seen[n]++
	}
	for _, n := range byID {
		if seen[n]--; seen[n] < 0 {
			return fmt.Errorf("workload: azure csvs: count %d by function id is not among the ranked counts", n)
		}
	}
	return nil
}

func copyProfile(p Profile) Profile {
	p.Payload = append(json.RawMessage(nil), p.Payload...)
	return p
}

// FunctionBench returns the profiles of the 8 FunctionBench functions of the
// Hiku paper, in file order (alphabetical). It returns nil only if the
// embedded data is corrupt, which the package tests rule out.
func FunctionBench() []Profile {
	load()
	if parseErr != nil {
		return nil
	}
	out := make([]Profile, len(profiles))
	for i, p := range profiles {
		out[i] = copyProfile(p)
	}
	return out
}

// BaseName strips a trailing "-<digits>" copy suffix from a function name:
// "gzip_compression-3" → "gzip_compression". Other names are returned
// unchanged ("foo-", "foo-x1" and "-3" included).
func BaseName(fn string) string {
	i := strings.LastIndexByte(fn, '-')
	if i <= 0 || i == len(fn)-1 {
		return fn
	}
	for _, c := range fn[i+1:] {
		if c < '0' || c > '9' {
			return fn
		}
	}
	return fn[:i]
}

// ProfileFor returns the profile of fn, or of its base name when fn is a copy
// "<base>-<digits>" (e.g. "gzip_compression-3" → gzip_compression). The
// returned profile keeps the base name in Name. ok is false when neither fn
// nor its base name is a FunctionBench function.
func ProfileFor(fn string) (Profile, bool) {
	load()
	if parseErr != nil {
		return Profile{}, false
	}
	for _, name := range []string{fn, BaseName(fn)} {
		for _, p := range profiles {
			if p.Name == name {
				return copyProfile(p), true
			}
		}
	}
	return Profile{}, false
}

// AzureCounts returns the invocation count of each of the 424 functions of
// the Azure Functions 2021 trace, sorted from most to least invoked as in the
// file. It returns nil only if the embedded data is corrupt.
func AzureCounts() []int64 {
	load()
	if parseErr != nil {
		return nil
	}
	return append([]int64(nil), counts...)
}

// AzureTotalInvocations is the number of invocations in the Azure Functions
// 2021 trace: the sum of AzureCounts.
const AzureTotalInvocations = 1980951

// AzureCountsByID returns the same 424 invocation counts as AzureCounts, in
// the order of the functions' hashed ids in the trace (ascending, as
// numpy.unique returns them). That is the key order of the probability
// table the Hiku evaluation's k6 script reads, whose i-th probability is
// AzureCountsByID()[i] / AzureTotalInvocations (bit for bit, in float64).
// It returns nil only if the embedded data is corrupt.
func AzureCountsByID() []int64 {
	load()
	if parseErr != nil {
		return nil
	}
	return append([]int64(nil), countsID...)
}

// Err reports whether the embedded figures failed to parse; nil in any build
// whose tests pass.
func Err() error {
	load()
	return parseErr
}
