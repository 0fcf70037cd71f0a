package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// RecordTimes returns the timestamps of the records at the given offsets of
// the partitions of cfg.Topic (partition → offset). A partition whose
// record cannot be read before ctx ends (compacted away, past the end) is
// left out; the error is ctx's when nothing at all was read.
func RecordTimes(ctx context.Context, cfg ReaderConfig, at map[int32]int64) (map[int32]time.Time, error) {
	out := map[int32]time.Time{}
	if len(at) == 0 {
		return out, nil
	}
	offsets := map[int32]kgo.Offset{}
	for p, o := range at {
		offsets[p] = kgo.NewOffset().At(o)
	}
	cl, err := cfg.client(offsets)
	if err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	defer cl.Close()
	for len(out) < len(at) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			if len(out) == 0 {
				return out, ctx.Err()
			}
			return out, nil
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if _, ok := out[r.Partition]; !ok && r.Offset >= at[r.Partition] {
				out[r.Partition] = r.Timestamp
			}
		})
	}
	return out, nil
}
