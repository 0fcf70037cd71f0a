package owbridge

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/pullsched/pullsched/policy"
)

func itoa(n int) string { return strconv.Itoa(n) }

// EventID is the pullsched id of an OpenWhisk activation id: the same 32
// hex digits in the canonical UUID form pullsched's events require.
func EventID(activationID string) string {
	a := activationID
	if len(a) != ActivationIDLen {
		return a
	}
	return a[:8] + "-" + a[8:12] + "-" + a[12:16] + "-" + a[16:20] + "-" + a[20:]
}

// ActivationIDOf reverses EventID.
func ActivationIDOf(eventID string) string { return strings.ReplaceAll(eventID, "-", "") }

// WorkerID is the pullsched worker id of invoker instance n: invoker<n>.
func WorkerID(n int) string { return "invoker" + itoa(n) }

// InvokerOf reverses WorkerID.
func InvokerOf(worker string) (int, bool) {
	s, ok := strings.CutPrefix(worker, "invoker")
	if !ok || s == "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}

// keyHashLen is the number of hex digits of the SHA-256 that makes a
// function key collision-free (48 bits: two of a million actions share
// one with a chance of about 2 in a billion).
const keyHashLen = 12

// owHashLen is the length of the OpenWhisk hash a key carries:
// policy.OWHashSuffix and 8 hex digits.
var owHashLen = len(policy.OWHashSuffix) + 8

// maxReadable bounds the readable part of a key so that it, '-', the
// SHA-256 digits and the OpenWhisk hash fit pullsched's 128-character
// name rule.
var maxReadable = 128 - 1 - keyHashLen - owHashLen

// FunctionKey is pullsched's function name of an OpenWhisk action
// invoked in namespace: OpenWhisk reuses a warm container only for the
// same invocation namespace and action (path, name and version), which
// may hold characters and lengths pullsched's names reject. The key is a
// readable form (every character outside [A-Za-z0-9_.-] replaced by '_',
// '/' by '.', cut to 103 characters), '-' and 12 hex digits of the
// SHA-256 of the exact original (OriginalName's), then policy.OWHashSuffix
// and the 8 hex digits of the stock balancer's hash of namespace and
// action (policy.OWGenerateHash), by which the ow-hash policy places it
// as the stock controller would.
func FunctionKey(namespace string, action FullyQualifiedEntityName) string {
	var b strings.Builder
	for _, r := range namespace + "." + action.Path + "." + action.Name {
		switch {
		case r == '/':
			b.WriteByte('.')
		case r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-'):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= maxReadable {
			break
		}
	}
	readable := b.String()
	if len(readable) > maxReadable {
		readable = readable[:maxReadable]
	}
	sum := sha256.Sum256([]byte(OriginalName(namespace, action)))
	ow := uint32(policy.OWGenerateHash(namespace, action.String()))
	return fmt.Sprintf("%s-%s%s%08x", readable, hex.EncodeToString(sum[:keyHashLen/2]), policy.OWHashSuffix, ow)
}

// OriginalName is the exact identity FunctionKey hashes:
// namespace|path/name@version. '|' cannot occur in an OpenWhisk name.
func OriginalName(namespace string, action FullyQualifiedEntityName) string {
	return namespace + "|" + action.String() + "@" + action.Version
}

// isHealthTest reports whether action is a controller's invoker health
// test (whisk.system/invokerHealthTestAction<C>).
func isHealthTest(action FullyQualifiedEntityName) bool {
	return action.Path == "whisk.system" && strings.HasPrefix(action.Name, "invokerHealthTestAction")
}
