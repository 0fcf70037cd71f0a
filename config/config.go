package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable pullsched reads.
const EnvPrefix = "PULLSCHED_"

// ConfigFlag is the flag (and PULLSCHED_CONFIG variable) naming the file.
const ConfigFlag = "config"

// EnvName returns the environment variable of a flag name.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// hikuKeys maps the keys of Hiku's load-balancer JSON config onto ours.
// host and port are combined into listen.
var hikuKeys = map[string]string{
	"balancer": "policy",
	"workers":  "workers",
}

// Load fills the flags of fs that were not given on the command line from
// the environment (looked up with getenv) and then from the file named by
// --config or PULLSCHED_CONFIG. fs must already be parsed. A file key or a
// value that fs does not accept is an error that names it.
func Load(fs *flag.FlagSet, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	file := ""
	if f := fs.Lookup(ConfigFlag); f != nil {
		file = f.Value.String()
	}
	if file == "" && !set[ConfigFlag] {
		file = getenv(EnvName(ConfigFlag))
	}
	var fromFile map[string]string
	if file != "" {
		var err error
		fromFile, err = ReadFile(file)
		if err != nil {
			return err
		}
		for k := range fromFile {
			if fs.Lookup(k) == nil {
				return fmt.Errorf("config %s: unknown setting %q for %q (known: %s)", file, k, fs.Name(), strings.Join(flagNames(fs), ", "))
			}
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || f.Name == ConfigFlag {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, err))
			}
			return
		}
		if v, ok := fromFile[f.Name]; ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("config %s: %s: %q: %w", file, f.Name, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

func flagNames(fs *flag.FlagSet) []string {
	var out []string
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != ConfigFlag {
			out = append(out, f.Name)
		}
	})
	return out
}

// ReadFile reads a YAML or JSON config file into flag-name → value strings.
// Lists become comma-separated values. Hiku's keys (host, port, balancer,
// workers) are translated.
func ReadFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var raw map[string]any
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.UseNumber()
		err = dec.Decode(&raw)
	default: // YAML is a superset of JSON
		err = yaml.Unmarshal(b, &raw)
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return flatten(path, raw)
}

func flatten(path string, raw map[string]any) (map[string]string, error) {
	out := map[string]string{}
	host, hasHost := raw["host"]
	port, hasPort := raw["port"]
	if hasHost || hasPort {
		h := "127.0.0.1"
		if hasHost {
			h = scalar(host)
		}
		if !hasPort {
			return nil, fmt.Errorf("config %s: host without port", path)
		}
		out["listen"] = h + ":" + scalar(port)
		delete(raw, "host")
		delete(raw, "port")
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := strings.ReplaceAll(strings.ToLower(k), "_", "-")
		if alias, ok := hikuKeys[name]; ok {
			name = alias
		}
		switch v := raw[k].(type) {
		case []any:
			parts := make([]string, len(v))
			for i, e := range v {
				parts[i] = scalar(e)
			}
			out[name] = strings.Join(parts, ",")
		case map[string]any:
			return nil, fmt.Errorf("config %s: %q: nested settings are not supported; use flat keys named like the flags", path, k)
		default:
			out[name] = scalar(v)
		}
	}
	return out, nil
}

func scalar(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

// List is a flag.Value holding a comma-separated list. The first Set
// replaces the default; repeating the flag appends.
type List struct {
	Values []string
	set    bool
}

// NewList returns a list holding defaults until it is first set.
func NewList(defaults ...string) *List { return &List{Values: defaults} }

// String implements flag.Value.
func (l *List) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.Values, ",")
}

// Set implements flag.Value.
func (l *List) Set(s string) error {
	if !l.set {
		l.Values, l.set = nil, true
	}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			l.Values = append(l.Values, p)
		}
	}
	return nil
}
