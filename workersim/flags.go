package workersim

import "flag"

// AddFlags registers the simulator's command-line flags on fs, writing into
// c: --name, --cores, --memory-mb, --sandbox-mb, --free-goal, --keep-alive,
// --notify-url, --advertise, --silent-evictions, --time-scale, --jitter,
// --seed and --cold-cpu. Flag defaults are c's current values, or the
// documented Config defaults where c holds zero. The listen address is the
// caller's (pass it to Run).
func (c *Config) AddFlags(fs *flag.FlagSet) {
	d := c.WithDefaults() // only for the defaults shown; New validates
	if c.Name == "" {
		d.Name = ""
	}
	fs.StringVar(&c.Name, "name", d.Name, "worker id in X-Worker and answers (default: the advertised address)")
	fs.IntVar(&c.Cores, "cores", d.Cores, "simulated CPUs shared by processor sharing")
	fs.IntVar(&c.MemoryMB, "memory-mb", d.MemoryMB, "sandbox memory pool in MB")
	fs.IntVar(&c.SandboxMB, "sandbox-mb", d.SandboxMB, "memory per sandbox in MB")
	fs.Float64Var(&c.FreeGoal, "free-goal", d.FreeGoal, "fraction of the pool the evictor keeps free (negative: none)")
	fs.DurationVar(&c.KeepAlive, "keep-alive", d.KeepAlive, "idle sandbox lifetime in model time (0: none)")
	fs.StringVar(&c.NotifyURL, "notify-url", d.NotifyURL, "base URL for eviction notices, POST <url>/destroySandbox/<fn> (empty: none)")
	fs.StringVar(&c.Advertise, "advertise", d.Advertise, "host:port put in eviction notices (default: the listen address)")
	fs.Float64Var(&c.SilentEvictions, "silent-evictions", d.SilentEvictions, "fraction of evictions not announced")
	fs.Float64Var(&c.TimeScale, "time-scale", d.TimeScale, "wall time per model time (0.1 runs ten times faster)")
	fs.Float64Var(&c.Jitter, "jitter", d.Jitter, "relative jitter of execution times (negative: none)")
	fs.Int64Var(&c.Seed, "seed", d.Seed, "seed of jitter and silent evictions")
	fs.BoolVar(&c.ColdCPU, "cold-cpu", d.ColdCPU, "model the cold-start extra as CPU work instead of a wait")
}
