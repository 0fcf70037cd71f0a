package main

import (
	"context"
	"errors"
	"flag"
)

var errNotWired = errors.New("not wired yet")

func setupDev(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "127.0.0.1:9020")
	return func(context.Context) error { return errNotWired }
}
func setupScheduler(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "127.0.0.1:9030")
	return func(context.Context) error { return errNotWired }
}
func setupInvoker(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "127.0.0.1:9040")
	return func(context.Context) error { return errNotWired }
}
func setupController(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "127.0.0.1:9020")
	return func(context.Context) error { return errNotWired }
}
func setupLoadgen(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "")
	return func(context.Context) error { return errNotWired }
}
func setupEval(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "")
	return func(context.Context) error { return errNotWired }
}
func setupBench(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "")
	return func(context.Context) error { return errNotWired }
}
