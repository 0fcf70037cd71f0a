package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/pullsched/pullsched/config"
	"github.com/pullsched/pullsched/policy"
)

// The compose check: docker-compose.yml is loaded with the compose-spec
// loader (as docker compose would, interpolating the file's defaults) and
// every pullsched service's command and PULLSCHED_* settings are run through
// the binary's own flag sets, so the file cannot name a setting, a
// subcommand or an address the binary would not agree with.

const (
	composeFile = "../../docker-compose.yml"
	// composeCIFile is CI's override: every service on the host network,
	// on loopback addresses (scripts/docker-ci.sh runs the two together).
	composeCIFile  = "../../docker-compose.ci.yml"
	dockerfilePath = "../../Dockerfile"
	// profileOpenLambda is the profile of bridges for real OpenLambda workers.
	profileOpenLambda = "openlambda"
)

// loadCompose loads the compose file with the given profiles active and an
// empty environment, so the file's own defaults apply.
func loadCompose(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	return loadComposeFiles(t, []string{composeFile}, nil, profiles...)
}

// loadComposeCI loads the compose file with CI's override on top.
func loadComposeCI(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	return loadComposeFiles(t, []string{composeFile, composeCIFile}, nil, profiles...)
}

// loadComposeFiles loads files, later ones overriding earlier ones, in the
// environment env ("KEY=value" entries).
func loadComposeFiles(t *testing.T, files, env []string, profiles ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions(files,
		cli.WithName("pullsched"),
		cli.WithWorkingDirectory(filepath.Dir(composeFile)),
		cli.WithEnv(env),
		cli.WithProfiles(profiles),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-spec loader: %v", err)
	}
	return p
}

// part is a pullsched service as the binary would see it.
type part struct {
	name     string
	svc      types.ServiceConfig
	cmd      string
	args     []string          // positional words after the subcommand
	env      map[string]string // the service's environment
	settings map[string]string // every flag's value after flags, env and file
}

func (p part) usesKafka() bool { return p.cmd != "workersim" }

// parseCommand parses args as run does: flags may come before and after
// positional words; the environment fills what flags leave unset. With
// strict, an environment key the subcommand does not read is an error (the
// health check shares its part's environment, so it is not strict).
func parseCommand(name string, args []string, env map[string]string, strict bool) (settings map[string]string, positional []string, err error) {
	var cmd *command
	for i := range commands {
		if commands[i].name == name {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		return nil, nil, fmt.Errorf("%q is not a pullsched subcommand", name)
	}
	c := &common{stdout: io.Discard, stderr: io.Discard}
	fs, _ := newFlagSet(*cmd, c)
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return nil, nil, fmt.Errorf("%s %v: %w", name, args, err)
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	var unknown []string
	for k := range env {
		if !strings.HasPrefix(k, config.EnvPrefix) && !strings.HasPrefix(k, "OTEL_") {
			unknown = append(unknown, k+" (not a PULLSCHED_* setting)")
			continue
		}
		if k == config.EnvName(config.ConfigFlag) || strings.HasPrefix(k, "OTEL_") {
			continue // OTEL_*: OpenTelemetry's own settings, read by package tracing
		}
		known := false
		fs.VisitAll(func(f *flag.Flag) { known = known || config.EnvName(f.Name) == k })
		if !known {
			if slices.Contains(knownEnv(), k) {
				unknown = append(unknown, k+" (read by other subcommands, not "+name+")")
			} else {
				unknown = append(unknown, k+" (read by no subcommand)")
			}
		}
	}
	if len(unknown) > 0 && strict {
		sort.Strings(unknown)
		return nil, nil, fmt.Errorf("%s does not understand %s", name, strings.Join(unknown, ", "))
	}
	if err := config.Load(fs, func(k string) string { return env[k] }); err != nil {
		return nil, nil, err
	}
	settings = map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { settings[f.Name] = f.Value.String() })
	return settings, positional, nil
}

// parts returns the services built from this repository (they have a build
// section), resolved through the binary's flag sets.
func parts(p *types.Project) ([]part, []error) {
	var out []part
	var errs []error
	for _, name := range sortedNames(p.Services) {
		svc := p.Services[name]
		if svc.Build == nil {
			continue
		}
		env := map[string]string{}
		for k, v := range svc.Environment {
			if v != nil {
				env[k] = *v
			}
		}
		if len(svc.Entrypoint) > 0 {
			errs = append(errs, fmt.Errorf("%s: entrypoint %v overrides the image's pullsched binary", name, svc.Entrypoint))
		}
		if len(svc.Command) == 0 {
			errs = append(errs, fmt.Errorf("%s: no command; name the pullsched subcommand", name))
			continue
		}
		settings, args, err := parseCommand(svc.Command[0], svc.Command[1:], env, true)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		out = append(out, part{name: name, svc: svc, cmd: svc.Command[0], args: args, env: env, settings: settings})
	}
	return out, errs
}

func sortedNames(s types.Services) []string {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// kafkaListeners returns the advertised listener addresses of the Kafka
// service (the one not built here that is configured as apache/kafka's
// image is, by KAFKA_* variables), by listener name, and the service's name.
func kafkaListeners(p *types.Project) (service string, adv map[string]string, err error) {
	for _, name := range sortedNames(p.Services) {
		svc := p.Services[name]
		if svc.Build != nil || svc.Environment["KAFKA_PROCESS_ROLES"] == nil {
			continue
		}
		v := svc.Environment["KAFKA_ADVERTISED_LISTENERS"]
		if v == nil {
			return name, nil, fmt.Errorf("%s: no KAFKA_ADVERTISED_LISTENERS", name)
		}
		adv = map[string]string{}
		for _, l := range strings.Split(*v, ",") {
			u, err := url.Parse(strings.TrimSpace(l))
			if err != nil || u.Host == "" {
				return name, nil, fmt.Errorf("%s: advertised listener %q: %v", name, l, err)
			}
			adv[u.Scheme] = u.Host
		}
		return name, adv, nil
	}
	return "", nil, errors.New("no Kafka service (KAFKA_PROCESS_ROLES in its environment)")
}

// isLoopback reports whether host is a loopback address (not a name).
func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hostNetwork reports whether p puts its services on the host network (as
// CI's override does) and names the services that break the rule: either
// every service is on the host network or none is.
func hostNetwork(p *types.Project) (host bool, offenders []string) {
	var on, off []string
	for _, name := range sortedNames(p.Services) {
		if p.Services[name].NetworkMode == "host" {
			on = append(on, name)
		} else {
			off = append(off, name)
		}
	}
	if len(on) == 0 {
		return false, nil
	}
	return true, off
}

// checkCompose returns every way p disagrees with the binary or itself.
// Services on the compose network reach each other by service name and
// publish their ports; with every service on the host network (CI's
// override) each part listens on a loopback address of its own and is
// reached there, and nothing is published.
func checkCompose(p *types.Project) []error {
	ps, errs := parts(p)
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	byName := map[string]part{}
	for _, pt := range ps {
		byName[pt.name] = pt
	}
	hostNet, offenders := hostNetwork(p)
	for _, name := range offenders {
		fail("%s: network_mode %q; the other services are on the host network", name, p.Services[name].NetworkMode)
	}
	if hostNet {
		for _, name := range sortedNames(p.Services) {
			svc := p.Services[name]
			if len(svc.Ports) > 0 {
				fail("%s: publishes ports on the host network, where they mean nothing", name)
			}
			if svc.Hostname != "" {
				fail("%s: hostname %q on the host network", name, svc.Hostname)
			}
			if len(svc.ExtraHosts) > 0 {
				fail("%s: extra_hosts on the host network", name)
			}
		}
	}

	// One image for every part, so compose builds it once.
	images := map[string]bool{}
	for _, pt := range ps {
		images[pt.svc.Image] = true
	}
	if len(images) != 1 {
		fail("pullsched services use images %v; want one image name", images)
	}

	// Brokers: every part that talks to Kafka names the broker's internal
	// advertised listener, a service on the compose network.
	kafka, adv, err := kafkaListeners(p)
	if err != nil {
		fail("%v", err)
	}
	internal := map[string]bool{}
	for lname, addr := range adv {
		host, port, _ := net.SplitHostPort(addr)
		if hostNet {
			if isLoopback(host) {
				internal[addr] = true
			} else {
				fail("%s: listener %s advertises %s, not a loopback address", kafka, lname, addr)
			}
			continue
		}
		if host == kafka || host == p.Services[kafka].Hostname {
			internal[addr] = true
			continue
		}
		// An outside listener must be published on the same port.
		published := false
		for _, pc := range p.Services[kafka].Ports {
			published = published || (pc.Published == port && strconv.Itoa(int(pc.Target)) == port)
		}
		if !published {
			fail("%s: listener %s advertises %s but port %s is not published as %s:%s", kafka, lname, addr, port, port, port)
		}
	}
	if len(internal) == 0 {
		if hostNet {
			fail("%s advertises no loopback listener (want 127.0.0.1:<port>)", kafka)
		} else {
			fail("%s advertises no listener on the compose network (want %s:<port>)", kafka, kafka)
		}
	}
	// Kafka's health check asks a listener the parts use.
	if svc, ok := p.Services[kafka]; ok {
		if hc := testOf(svc.HealthCheck); !slices.ContainsFunc(hc, func(a string) bool { return internal[a] }) {
			fail("%s: health check %v asks none of the listeners the parts use (%v)", kafka, hc, keys(internal))
		}
	}
	// On the host network Kafka binds loopback addresses only, each port once.
	listenPorts := map[string]string{} // port -> service
	if hostNet {
		if v := p.Services[kafka].Environment["KAFKA_LISTENERS"]; v != nil {
			for _, l := range strings.Split(*v, ",") {
				u, err := url.Parse(strings.TrimSpace(l))
				if err != nil || !isLoopback(u.Hostname()) {
					fail("%s: listener %q binds no loopback address", kafka, l)
					continue
				}
				listenPorts[u.Port()] = kafka
			}
		} else {
			fail("%s: no KAFKA_LISTENERS; on the host network they must name loopback addresses", kafka)
		}
	}

	// Settings that must agree across every part that talks to Kafka.
	agree := map[string]map[string][]string{} // setting -> value -> services
	for _, pt := range ps {
		if !pt.usesKafka() {
			continue
		}
		for _, b := range strings.Split(pt.settings["brokers"], ",") {
			if !internal[b] {
				fail("%s: broker %q is not an internal listener of %s (%v)", pt.name, b, kafka, keys(internal))
			}
		}
		for _, k := range []string{"brokers", "topic-prefix", "partitions", "replication"} {
			if agree[k] == nil {
				agree[k] = map[string][]string{}
			}
			agree[k][pt.settings[k]] = append(agree[k][pt.settings[k]], pt.name)
		}
	}
	for k, vals := range agree {
		if len(vals) > 1 {
			fail("--%s differs between services: %v", k, vals)
		}
	}

	// Published host ports never collide.
	hostPorts := map[string]string{}
	for _, name := range sortedNames(p.Services) {
		for _, pc := range p.Services[name].Ports {
			if pc.Published == "" {
				continue
			}
			proto := pc.Protocol
			if proto == "" {
				proto = "tcp"
			}
			key := pc.HostIP + ":" + pc.Published + "/" + proto
			if other, dup := hostPorts[key]; dup {
				fail("host port %s published by both %s and %s", key, other, name)
			}
			hostPorts[key] = name
		}
	}

	entry := dockerEntrypoint()
	roles := map[string][]part{}
	ids := map[string]string{}
	for _, pt := range ps {
		roles[pt.cmd] = append(roles[pt.cmd], pt)
		if pt.cmd == "topics" {
			if !slices.Equal(pt.args, []string{"create"}) {
				fail("%s: topics %v; want topics create", pt.name, pt.args)
			}
			if pt.svc.HealthCheck == nil || !pt.svc.HealthCheck.Disable {
				fail("%s: a one-shot service; disable its health check", pt.name)
			}
			if pt.svc.Restart == "always" || pt.svc.Restart == "unless-stopped" {
				fail("%s: restart %q would run the one shot forever", pt.name, pt.svc.Restart)
			}
			continue
		}
		if len(pt.args) > 0 {
			fail("%s: %s takes no positional words, got %v", pt.name, pt.cmd, pt.args)
		}
		if id, ok := pt.settings["id"]; ok {
			if id == "" {
				fail("%s: set PULLSCHED_ID so the %s keeps its identity across restarts", pt.name, pt.cmd)
			} else if other, dup := ids[id]; dup {
				fail("%s and %s share id %q", pt.name, other, id)
			} else {
				ids[id] = pt.name
			}
		}
		// A long-running part listens on every interface, publishes only
		// its listen port, and is probed by the health subcommand there.
		// On the host network it listens on a loopback address and a port
		// no other service uses.
		host, port, err := net.SplitHostPort(pt.settings["listen"])
		switch {
		case hostNet && (err != nil || !isLoopback(host)):
			fail("%s: listen %q; on the host network a part listens on a loopback address", pt.name, pt.settings["listen"])
		case hostNet:
			if other, dup := listenPorts[port]; dup {
				fail("%s and %s both listen on port %s of the host network", other, pt.name, port)
			}
			listenPorts[port] = pt.name
		case err != nil || (host != "0.0.0.0" && host != ""):
			fail("%s: listen %q; other containers reach it only on 0.0.0.0:<port>", pt.name, pt.settings["listen"])
		}
		for _, pc := range pt.svc.Ports {
			if strconv.Itoa(int(pc.Target)) != port {
				fail("%s: publishes container port %d but listens on %s", pt.name, pc.Target, port)
			}
		}
		hc := pt.svc.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 3 || hc.Test[0] != "CMD" || hc.Test[1] != entry || hc.Test[2] != "health" {
			fail("%s: health check %v; want [CMD %s health ...]", pt.name, testOf(hc), entry)
		} else {
			hs, _, err := parseCommand("health", hc.Test[3:], pt.env, false)
			if err != nil {
				fail("%s: health check: %v", pt.name, err)
			} else if hs["url"] == "" && hs["listen"] != pt.settings["listen"] {
				fail("%s: health probes %s, the part listens on %s", pt.name, hs["listen"], pt.settings["listen"])
			}
		}
		// Parts on Kafka start after the topics exist.
		if pt.usesKafka() {
			dep, ok := pt.svc.DependsOn["topics"]
			if !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
				fail("%s: depends_on topics with condition %s missing", pt.name, types.ServiceConditionCompletedSuccessfully)
			}
		}
	}
	for _, name := range sortedNames(p.Services) {
		for dep, d := range p.Services[name].DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				fail("%s depends on %s, which is not in this profile", name, dep)
				continue
			}
			if d.Condition == types.ServiceConditionHealthy && (target.HealthCheck == nil || target.HealthCheck.Disable) && target.Build == nil {
				fail("%s waits for %s to be healthy, which has no health check", name, dep)
			}
		}
	}
	if topics, ok := byName["topics"]; ok {
		if d, ok := topics.svc.DependsOn[kafka]; !ok || d.Condition != types.ServiceConditionHealthy {
			fail("topics: depends_on %s with condition %s missing", kafka, types.ServiceConditionHealthy)
		}
	} else {
		fail("no topics service")
	}

	// Roles: two scheduler replicas with a known policy, one controller
	// with an admin token on 9020.
	if n := len(roles["scheduler"]); n < 2 {
		fail("%d scheduler services; want at least 2 replicas", n)
	}
	for _, s := range roles["scheduler"] {
		if !slices.Contains(policy.Names(), s.settings["policy"]) {
			fail("%s: policy %q is none of %v", s.name, s.settings["policy"], policy.Names())
		}
	}
	if n := len(roles["controller"]); n != 1 {
		fail("%d controller services; want 1", n)
	}
	for _, c := range roles["controller"] {
		if c.settings["admin-token"] == "" {
			fail("%s: no admin token; the admin API would be off", c.name)
		}
		if !hostNet && !publishes(c.svc, "9020") {
			fail("%s: does not publish 9020", c.name)
		}
	}

	// Worker pairs: each invoker calls a workersim service on its listen
	// port and names it by the address the workersim puts in its notices,
	// which go back to that invoker. A part is reached by its service name
	// on the compose network, by its listen address on the host network.
	sims := map[string]part{} // by the host its invoker's worker-url names
	for _, w := range roles["workersim"] {
		if hostNet {
			sims[w.settings["listen"]] = w
		} else {
			sims[w.name] = w
		}
	}
	paired := map[string]string{}
	for _, inv := range roles["invoker"] {
		if inv.settings["pool"] == "true" {
			continue
		}
		u, err := url.Parse(inv.settings["worker-url"])
		if err != nil || u.Host == "" {
			fail("%s: worker-url %q is not a URL", inv.name, inv.settings["worker-url"])
			continue
		}
		key := u.Hostname()
		if hostNet {
			key = u.Host
		}
		sim, ok := sims[key]
		if !ok {
			continue // a worker outside compose (the openlambda profile)
		}
		if _, port, _ := net.SplitHostPort(sim.settings["listen"]); u.Port() != port {
			fail("%s: worker-url %s, but %s listens on %s", inv.name, u, sim.name, sim.settings["listen"])
		}
		if inv.settings["advertise"] != sim.settings["advertise"] || sim.settings["advertise"] == "" {
			fail("%s: advertise %q, but %s names itself %q in notices", inv.name, inv.settings["advertise"], sim.name, sim.settings["advertise"])
		}
		_, invPort, _ := net.SplitHostPort(inv.settings["listen"])
		want := "http://" + net.JoinHostPort(inv.name, invPort)
		if hostNet {
			want = "http://" + inv.settings["listen"]
		}
		if strings.TrimSuffix(sim.settings["notify-url"], "/") != want {
			fail("%s: notify-url %q; its bridge %s takes notices at %s", sim.name, sim.settings["notify-url"], inv.name, want)
		}
		if other, dup := paired[sim.name]; dup {
			fail("%s is served by both %s and %s", sim.name, other, inv.name)
		}
		paired[sim.name] = inv.name
		if d, ok := inv.svc.DependsOn[sim.name]; !ok || d.Condition != types.ServiceConditionHealthy {
			fail("%s: depends_on %s with condition %s missing", inv.name, sim.name, types.ServiceConditionHealthy)
		}
	}
	for _, sim := range sims {
		if _, ok := paired[sim.name]; !ok {
			fail("%s has no invoker bridge", sim.name)
		}
	}
	return errs
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func publishes(svc types.ServiceConfig, port string) bool {
	for _, pc := range svc.Ports {
		if pc.Published == port {
			return true
		}
	}
	return false
}

func testOf(hc *types.HealthCheckConfig) []string {
	if hc == nil {
		return nil
	}
	return hc.Test
}

var entrypointRE = regexp.MustCompile(`(?m)^ENTRYPOINT \["([^"]+)"\]`)

// dockerEntrypoint is the binary path of the Dockerfile's ENTRYPOINT.
func dockerEntrypoint() string {
	b, err := os.ReadFile(dockerfilePath)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	m := entrypointRE.FindSubmatch(b)
	if m == nil {
		return "(no exec-form ENTRYPOINT in the Dockerfile)"
	}
	return string(m[1])
}

// TestComposeFile: docker-compose.yml passes the check with the default
// profile (Kafka, topics, two schedulers, the controller, three simulated
// workers with their bridges) and with the openlambda profile added.
func TestComposeFile(t *testing.T) {
	def := loadCompose(t)
	for _, err := range checkCompose(def) {
		t.Error(err)
	}
	ps, _ := parts(def)
	count := map[string]int{}
	for _, pt := range ps {
		count[pt.cmd]++
	}
	want := map[string]int{"topics": 1, "scheduler": 2, "controller": 1, "workersim": 3, "invoker": 3}
	for cmd, n := range want {
		if count[cmd] != n {
			t.Errorf("default profile: %d %s services, want %d", count[cmd], cmd, n)
		}
	}

	ol := loadCompose(t, profileOpenLambda)
	for _, err := range checkCompose(ol) {
		t.Errorf("profile %s: %v", profileOpenLambda, err)
	}
	if n := len(ol.Services) - len(def.Services); n != 3 {
		t.Errorf("profile %s adds %d services, want 3 OpenLambda bridges", profileOpenLambda, n)
	}
	for _, name := range sortedNames(ol.Services) {
		if _, inDefault := def.Services[name]; inDefault {
			continue
		}
		pt := ol.Services[name]
		if len(pt.Command) == 0 || pt.Command[0] != "invoker" {
			t.Errorf("profile %s: %s runs %v, want an invoker bridge", profileOpenLambda, name, pt.Command)
		}
	}
}

// TestComposeCheckCatches: each rule of the check fails on a file that
// breaks it, so a passing check means something.
func TestComposeCheckCatches(t *testing.T) {
	setEnv := func(svc, key, val string) func(*types.Project) {
		return func(p *types.Project) {
			s := p.Services[svc]
			env := types.MappingWithEquals{}
			for k, v := range s.Environment {
				env[k] = v
			}
			env[key] = &val
			s.Environment = env
			p.Services[svc] = s
		}
	}
	cases := []struct {
		name   string
		break_ func(*types.Project)
		want   string
	}{
		{"unknown variable", setEnv("scheduler-1", "PULLSCHED_BROKER", "kafka:19092"), "read by no subcommand"},
		{"variable of another subcommand", setEnv("controller", "PULLSCHED_POLICY", "pull"), "read by other subcommands"},
		{"non-pullsched variable", setEnv("invoker-1", "KAFKA_BROKERS", "kafka:19092"), "not a PULLSCHED_* setting"},
		{"bad value", setEnv("scheduler-2", "PULLSCHED_PARTITIONS", "eight"), "PULLSCHED_PARTITIONS"},
		{"prefix disagrees", setEnv("invoker-2", "PULLSCHED_TOPIC_PREFIX", "other."), "--topic-prefix differs"},
		{"partitions disagree", setEnv("controller", "PULLSCHED_PARTITIONS", "4"), "--partitions differs"},
		{"outside broker address", setEnv("scheduler-1", "PULLSCHED_BROKERS", "localhost:9092"), "not an internal listener"},
		{"loopback listen", setEnv("controller", "PULLSCHED_LISTEN", "127.0.0.1:9020"), "reach it only on 0.0.0.0"},
		{"listen not published", setEnv("invoker-3", "PULLSCHED_LISTEN", "0.0.0.0:9050"), "publishes container port 9040"},
		{"advertise mismatch", setEnv("invoker-1", "PULLSCHED_ADVERTISE", "worker-1:8081"), "names itself"},
		{"notices to the wrong bridge", setEnv("workersim-2", "PULLSCHED_NOTIFY_URL", "http://invoker-1:9040"), "takes notices at"},
		{"unknown policy", setEnv("scheduler-2", "PULLSCHED_POLICY", "fastest"), "is none of"},
		{"no admin token", setEnv("controller", "PULLSCHED_ADMIN_TOKEN", ""), "no admin token"},
		{"duplicate id", setEnv("scheduler-2", "PULLSCHED_ID", "scheduler-1"), "share id"},
		{"not a subcommand", func(p *types.Project) {
			s := p.Services["scheduler-2"]
			s.Command = types.ShellCommand{"schedule"}
			p.Services["scheduler-2"] = s
		}, "not a pullsched subcommand"},
		{"bad flag in command", func(p *types.Project) {
			s := p.Services["topics"]
			s.Command = types.ShellCommand{"topics", "create", "--partition", "8"}
			p.Services["topics"] = s
		}, "flag provided but not defined"},
		{"port collision", func(p *types.Project) {
			s := p.Services["scheduler-2"]
			s.Ports = []types.ServicePortConfig{{Target: 9030, Published: "9030", Protocol: "tcp"}}
			p.Services["scheduler-2"] = s
		}, "published by both"},
		{"health check elsewhere", func(p *types.Project) {
			s := p.Services["invoker-1"]
			hc := *s.HealthCheck
			hc.Test = types.HealthCheckTest{"CMD", "/usr/local/bin/pullsched", "health", "--listen", "127.0.0.1:9020"}
			s.HealthCheck = &hc
			p.Services["invoker-1"] = s
		}, "health probes"},
		{"no topics dependency", func(p *types.Project) {
			s := p.Services["controller"]
			s.DependsOn = types.DependsOnConfig{}
			p.Services["controller"] = s
		}, "depends_on topics"},
		{"one replica", func(p *types.Project) { delete(p.Services, "scheduler-2") }, "want at least 2 replicas"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := loadCompose(t)
			tc.break_(p)
			errs := checkCompose(p)
			for _, err := range errs {
				if strings.Contains(err.Error(), tc.want) {
					return
				}
			}
			t.Fatalf("no error containing %q; got %v", tc.want, errs)
		})
	}
}

// TestDockerfileBuildsWhatComposeRuns: the Dockerfile builds the binary
// static (the flags the static check below uses), runs it as non-root with
// a health check through the health subcommand.
func TestDockerfileBuildsWhatComposeRuns(t *testing.T) {
	b, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{
		"CGO_ENABLED=0",
		`go build -trimpath -ldflags "-s -w" -o /out/pullsched ./cmd/pullsched`,
		// Base images are build arguments whose defaults are the public
		// images; scripts/docker-ci.sh passes images it built itself.
		"\nARG GO_IMAGE=golang:",
		"\nARG RUNTIME_IMAGE=scratch\n",
		"\nFROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build\n",
		"\nFROM ${RUNTIME_IMAGE}\n",
		"USER 65532:65532",
		`CMD ["/usr/local/bin/pullsched", "health"]`,
		`ENTRYPOINT ["/usr/local/bin/pullsched"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// A "# syntax=" line makes BuildKit pull a frontend image, which a
	// machine without a registry cannot.
	if regexp.MustCompile(`(?m)^#\s*syntax\s*=`).MatchString(df) {
		t.Error("Dockerfile has a # syntax= directive; BuildKit would pull its frontend image")
	}
	// The default command runs as the binary would parse it.
	m := regexp.MustCompile(`(?m)^CMD \[(.*)\]$`).FindStringSubmatch(df)
	if m == nil {
		t.Fatal("Dockerfile has no exec-form CMD")
	}
	var args []string
	for _, a := range strings.Split(m[1], ",") {
		args = append(args, strings.Trim(strings.TrimSpace(a), `"`))
	}
	settings, _, err := parseCommand(args[0], args[1:], nil, true)
	if err != nil {
		t.Fatalf("CMD %v: %v", args, err)
	}
	if settings["listen"] != "0.0.0.0:9020" {
		t.Errorf("CMD %v listens on %s; a container must listen on 0.0.0.0", args, settings["listen"])
	}
}

// setServiceEnv returns a change of p that sets key to val in svc's
// environment.
func setServiceEnv(svc, key, val string) func(*types.Project) {
	return func(p *types.Project) {
		s := p.Services[svc]
		env := types.MappingWithEquals{}
		for k, v := range s.Environment {
			env[k] = v
		}
		env[key] = &val
		s.Environment = env
		p.Services[svc] = s
	}
}

// TestComposeCIOverride: docker-compose.ci.yml puts every service of
// either profile on the host network, each part on a loopback address and
// port of its own, and the result still passes the compose check.
func TestComposeCIOverride(t *testing.T) {
	for _, profiles := range [][]string{nil, {profileOpenLambda}} {
		def := loadCompose(t, profiles...)
		ci := loadComposeCI(t, profiles...)
		if host, off := hostNetwork(ci); !host || len(off) > 0 {
			t.Errorf("profiles %v: host network %v, services off it: %v", profiles, host, off)
		}
		for _, err := range checkCompose(ci) {
			t.Errorf("profiles %v: %v", profiles, err)
		}
		if got, want := sortedNames(ci.Services), sortedNames(def.Services); !slices.Equal(got, want) {
			t.Errorf("profiles %v: the override has services %v, the file %v", profiles, got, want)
		}
		// What the override leaves alone stays as the file says.
		for _, name := range sortedNames(def.Services) {
			d, c := def.Services[name], ci.Services[name]
			if !slices.Equal(d.Command, c.Command) || d.Image != c.Image || (d.HealthCheck == nil) != (c.HealthCheck == nil) {
				t.Errorf("%s: the override changes its command, image or health check presence", name)
			}
			for dep, dd := range d.DependsOn {
				if cd, ok := c.DependsOn[dep]; !ok || cd.Condition != dd.Condition {
					t.Errorf("%s: the override changes its dependency on %s", name, dep)
				}
			}
		}
	}
}

// TestComposeImages: both images come from the environment, defaulting to
// the local build and the public Apache Kafka image.
func TestComposeImages(t *testing.T) {
	images := func(p *types.Project) (pullsched, kafka map[string]bool) {
		pullsched, kafka = map[string]bool{}, map[string]bool{}
		for _, name := range sortedNames(p.Services) {
			if svc := p.Services[name]; svc.Build != nil {
				pullsched[svc.Image] = true
			} else {
				kafka[svc.Image] = true
			}
		}
		return pullsched, kafka
	}
	ps, ks := images(loadCompose(t))
	if !ps["pullsched:local"] || len(ps) != 1 {
		t.Errorf("default pullsched images %v, want pullsched:local", keys(ps))
	}
	if len(ks) != 1 || !strings.HasPrefix(keys(ks)[0], "apache/kafka:") {
		t.Errorf("default Kafka images %v, want one apache/kafka:<version>", keys(ks))
	}
	env := []string{"PULLSCHED_IMAGE=pullsched-ci/pullsched:latest", "KAFKA_IMAGE=pullsched-ci/kafka:4.4.0"}
	p := loadComposeFiles(t, []string{composeFile, composeCIFile}, env)
	ps, ks = images(p)
	if !ps["pullsched-ci/pullsched:latest"] || len(ps) != 1 {
		t.Errorf("PULLSCHED_IMAGE set: pullsched images %v", keys(ps))
	}
	if !ks["pullsched-ci/kafka:4.4.0"] || len(ks) != 1 {
		t.Errorf("KAFKA_IMAGE set: Kafka images %v", keys(ks))
	}
	// The check finds Kafka by its configuration, whatever its image.
	for _, err := range checkCompose(p) {
		t.Errorf("with local images: %v", err)
	}
}

// TestComposeCICheckCatches: each host-network rule fails on an override
// that breaks it.
func TestComposeCICheckCatches(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(*types.Project)
		want   string
	}{
		{"one service off the host network", func(p *types.Project) {
			s := p.Services["scheduler-2"]
			s.NetworkMode = ""
			p.Services["scheduler-2"] = s
		}, "the other services are on the host network"},
		{"published port", func(p *types.Project) {
			s := p.Services["controller"]
			s.Ports = []types.ServicePortConfig{{Target: 25020, Published: "25020", Protocol: "tcp"}}
			p.Services["controller"] = s
		}, "publishes ports on the host network"},
		{"listen on every interface", setServiceEnv("controller", "PULLSCHED_LISTEN", "0.0.0.0:25020"), "listens on a loopback address"},
		{"two parts on one port", setServiceEnv("scheduler-2", "PULLSCHED_LISTEN", "127.0.0.1:25030"), "both listen on port 25030"},
		{"a part on Kafka's port", setServiceEnv("invoker-1", "PULLSCHED_LISTEN", "127.0.0.1:25092"), "both listen on port 25092"},
		{"broker by service name", setServiceEnv("scheduler-1", "PULLSCHED_BROKERS", "kafka:19092"), "not an internal listener"},
		{"Kafka advertises a name", setServiceEnv("kafka", "KAFKA_ADVERTISED_LISTENERS", "INTERNAL://kafka:19092"), "not a loopback address"},
		{"Kafka binds every interface", setServiceEnv("kafka", "KAFKA_LISTENERS", "INTERNAL://:25092,CONTROLLER://127.0.0.1:25093"), "binds no loopback address"},
		{"worker by service name", setServiceEnv("invoker-2", "PULLSCHED_WORKER_URL", "http://workersim-2:25082"), "workersim-2 has no invoker bridge"},
		{"notices by service name", setServiceEnv("workersim-1", "PULLSCHED_NOTIFY_URL", "http://invoker-1:25041"), "takes notices at"},
		{"Kafka health check elsewhere", func(p *types.Project) {
			s := p.Services["kafka"]
			hc := *s.HealthCheck
			hc.Test = types.HealthCheckTest{"CMD", "/opt/kafka/bin/kafka-broker-api-versions.sh", "--bootstrap-server", "kafka:19092"}
			s.HealthCheck = &hc
			p.Services["kafka"] = s
		}, "asks none of the listeners"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := loadComposeCI(t)
			tc.break_(p)
			errs := checkCompose(p)
			for _, err := range errs {
				if strings.Contains(err.Error(), tc.want) {
					return
				}
			}
			t.Fatalf("no error containing %q; got %v", tc.want, errs)
		})
	}
}
