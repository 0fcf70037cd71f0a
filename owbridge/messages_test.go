package owbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}

// sameJSON reports whether a and b hold the same JSON value, member order
// ignored, after dropping the top-level members of a named in drop.
func sameJSON(t testing.TB, a, b []byte, drop ...string) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if m, ok := va.(map[string]any); ok {
		for _, k := range drop {
			delete(m, k)
		}
	}
	return reflect.DeepEqual(va, vb)
}

func TestActivationRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		file     string
		blocking bool
		ns, fqn  string
		unknown  []string
	}{
		{"activation-blocking.json", true, "acme-shop", "acme-shop/resize", nil},
		{"activation-nonblocking.json", false, "Team B", "Team B/tools/send mail@v2", []string{"someFutureMember"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			in := fixture(t, tc.file)
			m, err := DecodeActivation(in)
			if err != nil {
				t.Fatal(err)
			}
			if m.Blocking != tc.blocking || m.User.Namespace.Name != tc.ns || m.Action.String() != tc.fqn {
				t.Fatalf("decoded %+v", m)
			}
			out, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(t, in, out, tc.unknown...) {
				t.Fatalf("round trip differs:\n in %s\nout %s", in, out)
			}
			if bytes.Contains(out, []byte("someFutureMember")) {
				t.Fatal("unknown member kept by the typed encoder")
			}
		})
	}
}

func TestTransactionIDForms(t *testing.T) {
	for _, in := range []string{
		`["a",1]`,
		`["a",1764150000123,true]`,
		`["child",2,["root",1]]`,
		`["child",2,true,["mid",1,["root",0]]]`,
	} {
		var tid TransactionID
		if err := json.Unmarshal([]byte(in), &tid); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		out, err := json.Marshal(tid)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != in {
			t.Errorf("%s came back as %s", in, out)
		}
	}
	for _, bad := range []string{`"a"`, `["a"]`, `[1,2]`, `["a","b"]`, `["a",1,true,["b",1],3]`} {
		var tid TransactionID
		if err := json.Unmarshal([]byte(bad), &tid); !errors.Is(err, ErrMessage) {
			t.Errorf("%s: err %v, want ErrMessage", bad, err)
		}
	}
}

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
	}{
		{"0 B", 0}, {"2048 MB", 2 * GB}, {"4294967296 B", 4 * GB}, {"512m", 512 * MB},
		{"1 G", GB}, {"16 kb", 16 * KB}, {"7B", 7},
	} {
		got, err := ParseByteSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "12", "MB", "-1 B", "1.5 GB", "3 TB", "99999999999999999999 GB"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if b, _ := json.Marshal(ByteSize(4 * GB)); string(b) != `"4294967296 B"` {
		t.Errorf("wrote %s", b)
	}
}

func TestAckRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		file      string
		kind      AckKind
		id        string
		instance  int
		field     string
		sysErr    bool
		initTime  int64
		memory    int
		shrunk    bool
		slotFree  bool
		hasRecord bool
	}{
		{"ack-combined-cold.json", AckCombined, "5a1f0c9e2b7d4e3fa6c8b0d19e2f3a4b", 3, "instance", false, 310, 512, false, true, true},
		{"ack-combined-shrunk.json", AckCombined, "5a1f0c9e2b7d4e3fa6c8b0d19e2f3a4b", 3, "instance", true, -1, 0, true, true, false},
		{"ack-completion.json", AckCompletion, "00ff00ff00ff00ff00ff00ff00ff00ff", 1, "instance", false, -1, 0, false, true, false},
		{"ack-completion-0.9.json", AckCompletion, "0123456789abcdef0123456789abcdef", 2, "invoker", false, -1, 0, false, true, false},
		{"ack-result.json", AckResult, "5a1f0c9e2b7d4e3fa6c8b0d19e2f3a4b", -1, "", false, -1, 256, false, false, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			in := fixture(t, tc.file)
			a, err := DecodeAck(in)
			if err != nil {
				t.Fatal(err)
			}
			if a.Kind != tc.kind || a.ActivationID != tc.id || a.SystemError() != tc.sysErr || a.SlotFree() != tc.slotFree {
				t.Fatalf("decoded %+v", a)
			}
			if (a.Instance != nil) != (tc.instance >= 0) || a.Instance != nil && (a.Instance.Instance != tc.instance || a.InstanceField != tc.field) {
				t.Fatalf("instance %+v field %q", a.Instance, a.InstanceField)
			}
			if (a.ResponseID != "") != tc.shrunk || (a.Activation != nil) != tc.hasRecord {
				t.Fatalf("response id %q record %v", a.ResponseID, a.Activation != nil)
			}
			if a.Activation != nil {
				if got := a.Activation.InitTimeMs(); got != tc.initTime {
					t.Errorf("initTime %d, want %d", got, tc.initTime)
				}
				if l, _ := a.Activation.Limits(); l.Memory != tc.memory {
					t.Errorf("memory %d, want %d", l.Memory, tc.memory)
				}
			}
			out, err := a.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(t, in, out) {
				t.Fatalf("round trip differs:\n in %s\nout %s", in, out)
			}
		})
	}
}

func TestAckRejects(t *testing.T) {
	for _, bad := range []string{
		`[]`,
		`{"response":"5a1f0c9e2b7d4e3fa6c8b0d19e2f3a4b"}`,                                     // no transid
		`{"transid":["t",1],"response":"XYZ"}`,                                                // bad id
		`{"transid":["t",1],"response":"5A1F0C9E2B7D4E3FA6C8B0D19E2F3A4B"}`,                   // upper case
		`{"transid":["t",1],"response":12}`,                                                   // neither
		`{"transid":["t",1],"activationId":"5a1f0c9e2b7d4e3fa6c8b0d19e2f3a4b","instance":{}}`, // no userMemory
		`{"transid":["t",1],"activationId":"5a1f0c9e2b7d4e3fa6c8b0d19e2f3a4b","instance":{"instance":1,"userMemory":"1 B","instanceType":"controller"}}`,
		`{"transid":["t",1],"isSystemError":"no","response":"5a1f0c9e2b7d4e3fa6c8b0d19e2f3a4b","instance":{"instance":1,"userMemory":"1 B","instanceType":"invoker"}}`,
	} {
		if _, err := DecodeAck([]byte(bad)); !errors.Is(err, ErrMessage) {
			t.Errorf("%s: err %v, want ErrMessage", bad, err)
		}
	}
}

func TestPingVersions(t *testing.T) {
	p1, err := DecodePing(fixture(t, "ping-1.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	if p1.Name.Instance != 4 || p1.Name.UserMemory != 2*GB || !p1.Enabled() || p1.Name.Tags != nil {
		t.Fatalf("1.0 ping %+v", p1)
	}
	p2, err := DecodePing(fixture(t, "ping-2.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	if p2.Name.Instance != 5 || p2.Name.UserMemory != 8*GB || p2.Enabled() || p2.Name.BusyMemory == nil ||
		*p2.Name.BusyMemory != GB || !reflect.DeepEqual(p2.Name.DedicatedNamespaces, []string{"Team B"}) {
		t.Fatalf("2.0 ping %+v", p2)
	}
	for _, tc := range []struct {
		p    *PingMessage
		file string
	}{{p1, "ping-1.0.json"}, {p2, "ping-2.0.json"}} {
		out, err := tc.p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		in := fixture(t, tc.file)
		if !sameJSON(t, in, out) {
			t.Errorf("%s round trip:\n in %s\nout %s", tc.file, in, out)
		}
		if tc.p == p1 && bytes.Contains(out, []byte("tags")) {
			t.Errorf("1.0 ping grew 2.0 members: %s", out)
		}
	}
	// An invoker configured in MB writes its size in MB; it reads the same.
	pm, err := DecodePing([]byte(`{"name":{"instance":4,"userMemory":"2048 MB","instanceType":"invoker"}}`))
	if err != nil || pm.Name.UserMemory != 2*GB {
		t.Fatalf("MB ping: %+v, %v", pm, err)
	}
	if _, err := DecodePing([]byte(`{"isEnabled":true}`)); err == nil {
		t.Error("ping without a name accepted")
	}
}

func TestInvokerInstanceIDOrder(t *testing.T) {
	// OpenWhisk writes instance, userMemory, [busyMemory], instanceType,
	// [tags, dedicatedNamespaces (2.0)], [uniqueName], [displayedName].
	u := "u"
	i := InvokerInstanceID{Instance: 0, UserMemory: 64 * GB, Tags: []string{}, DedicatedNamespaces: []string{}, UniqueName: &u}
	b, err := i.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"instance":0,"userMemory":"68719476736 B","instanceType":"invoker","tags":[],"dedicatedNamespaces":[],"uniqueName":"u"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestRewriteAck(t *testing.T) {
	facade := InvokerInstanceID{Instance: 0, UserMemory: 1 << 40, Tags: []string{}, DedicatedNamespaces: []string{}}
	for _, file := range []string{"ack-combined-cold.json", "ack-combined-shrunk.json", "ack-completion.json", "ack-completion-0.9.json", "ack-result.json"} {
		t.Run(file, func(t *testing.T) {
			in := fixture(t, file)
			a, err := DecodeAck(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := RewriteAck(in, a.InstanceField, facade, false)
			if err != nil {
				t.Fatal(err)
			}
			before, _ := members(in)
			after, err := members(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(before) != len(after) {
				t.Fatalf("%d members became %d", len(before), len(after))
			}
			for i := range before {
				b, a2 := before[i], after[i]
				if b.key != a2.key {
					t.Fatalf("member %d: %q became %q", i, b.key, a2.key)
				}
				switch b.key {
				case a.InstanceField:
					var got InvokerInstanceID
					if err := json.Unmarshal(a2.raw, &got); err != nil || got.Instance != 0 || got.UserMemory != 1<<40 {
						t.Fatalf("instance %s (%v)", a2.raw, err)
					}
				case "isSystemError":
					if string(a2.raw) != "false" {
						t.Fatalf("isSystemError %s", a2.raw)
					}
				default:
					if !bytes.Equal(b.raw, a2.raw) {
						t.Fatalf("member %q changed:\n%s\n%s", b.key, b.raw, a2.raw)
					}
				}
			}
			if a.Kind == AckResult && !bytes.Equal(in, out) {
				t.Fatalf("result ack changed:\n%s\n%s", in, out)
			}
			if _, err := DecodeAck(out); err != nil {
				t.Fatalf("rewritten ack does not decode: %v", err)
			}
		})
	}
	if _, err := RewriteAck([]byte(`{"a":1} x`), "", facade, false); err == nil {
		t.Error("trailing data accepted")
	}
	if strings.Contains(string(fixture(t, "ack-combined-shrunk.json")), `"isSystemError":false`) {
		t.Fatal("fixture should carry a system error")
	}
}
