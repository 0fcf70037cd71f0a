// Package config gives every pullsched part the same configuration sources:
// command-line flags, PULLSCHED_* environment variables and an optional
// YAML or JSON file (Hiku's JSON config is accepted as it is).
//
// Each setting is a flag; its environment variable is PULLSCHED_ followed by
// the flag name in upper case with '-' as '_' (--topic-prefix →
// PULLSCHED_TOPIC_PREFIX), and its file key is the flag name. Precedence:
// flag, then environment, then file, then the flag's default.
package config
