package policy

import (
	"fmt"
	"math"
	"time"
)

// EstimatorConfig tunes an Estimator. The zero value selects the defaults.
type EstimatorConfig struct {
	// Alpha is the weight of the newest sample in the moving average, in
	// (0, 1]. Default 0.2 (when 0): about the last ten completions matter.
	Alpha float64
	// Default is the estimate used while no function has been observed.
	// Default 100ms (when 0).
	Default time.Duration
}

// Estimator learns the expected execution time of each function as an
// exponentially weighted moving average (EWMA) of the durations of its
// completions. A function never observed is estimated at the mean of the
// current estimates of all observed functions (or Default while there are
// none), so in the sjf discipline it neither jumps ahead of known functions
// nor is parked behind them.
//
// Memory grows with the number of distinct functions observed.
type Estimator struct {
	alpha float64
	def   float64
	ewma  map[string]float64 // nanoseconds
	sum   float64            // sum of ewma values, for the mean
}

// NewEstimator returns an Estimator, or an error for an invalid config.
func NewEstimator(cfg EstimatorConfig) (*Estimator, error) {
	if cfg.Alpha == 0 {
		cfg.Alpha = 0.2
	}
	if !(cfg.Alpha > 0 && cfg.Alpha <= 1) {
		return nil, fmt.Errorf("%w: estimator Alpha %v must be in (0, 1]", ErrConfig, cfg.Alpha)
	}
	if cfg.Default == 0 {
		cfg.Default = 100 * time.Millisecond
	}
	if cfg.Default < 0 {
		return nil, fmt.Errorf("%w: estimator Default %v must not be negative", ErrConfig, cfg.Default)
	}
	return &Estimator{alpha: cfg.Alpha, def: float64(cfg.Default), ewma: make(map[string]float64)}, nil
}

// Observe feeds one completed execution of function; feed successful
// completions only, since a timeout says little about the run time.
// Negative durations are ignored; the first sample of a function becomes
// its estimate.
func (e *Estimator) Observe(function string, d time.Duration) {
	if d < 0 {
		return
	}
	x := float64(d)
	old, ok := e.ewma[function]
	v := ewma(old, x, e.alpha, !ok)
	if ok {
		e.sum -= old
	}
	e.ewma[function] = v
	e.sum += v
}

// ewma is one step of an exponentially weighted moving average with
// weight alpha for the new sample x; the first sample is taken as it is.
func ewma(old, x, alpha float64, first bool) float64 {
	if first {
		return x
	}
	return old + alpha*(x-old)
}

// Estimate returns the expected duration of function and whether the
// function has been observed; an unseen function gets Mean().
func (e *Estimator) Estimate(function string) (time.Duration, bool) {
	if v, ok := e.ewma[function]; ok {
		return time.Duration(math.Round(v)), true
	}
	return e.Mean(), false
}

// Mean returns the mean of the current estimates over observed functions,
// or the configured Default while none has been observed.
func (e *Estimator) Mean() time.Duration {
	if len(e.ewma) == 0 {
		return time.Duration(e.def)
	}
	m := e.sum / float64(len(e.ewma))
	if m < 0 { // float drift
		m = 0
	}
	return time.Duration(math.Round(m))
}

// Len returns the number of functions observed.
func (e *Estimator) Len() int { return len(e.ewma) }
