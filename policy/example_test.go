package policy_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/pullsched/pullsched/policy"
)

// The scheduler loop: pick, queue on NoCapacity, complete, retry the head.
func Example() {
	p, err := policy.New("pull-based", policy.Config{Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	est, _ := policy.NewEstimator(policy.EstimatorConfig{})
	pending, _ := policy.NewPending("sjf", 100, est)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

	p.WorkerJoined(policy.WorkerInfo{ID: "w1", Capacity: 1})

	first := p.Pick(policy.Request{Function: "resize", Now: now})
	fmt.Println(first.Code, first.Worker, first.Warm)

	second := p.Pick(policy.Request{Function: "resize", Now: now})
	fmt.Println(second.Code)
	if second.Code == policy.NoCapacity {
		err := pending.Push(policy.Item{ID: "a2", Function: "resize", Enqueued: now})
		fmt.Println(err == nil, errors.Is(err, policy.ErrPendingFull))
	}

	done := now.Add(40 * time.Millisecond)
	p.Completed(policy.Completion{Worker: first.Worker, Function: "resize", OK: true,
		Start: policy.StartCold, WarmHint: first.Warm, Duration: 40 * time.Millisecond, Now: done})
	est.Observe("resize", 40*time.Millisecond)

	head, _ := pending.Peek()
	if d := p.Pick(policy.Request{Function: head.Function, Now: done}); d.Code == policy.Placed {
		pending.Pop()
		fmt.Println(d.Code, d.Worker, d.Warm, pending.Len())
	}
	// Output:
	// placed w1 false
	// no-capacity
	// true false
	// placed w1 true 0
}
