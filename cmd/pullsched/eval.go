package main

import (
	"context"
	"errors"
	"flag"
)

func setupEval(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "")
	return func(context.Context) error { return errors.New("eval: not wired yet") }
}
