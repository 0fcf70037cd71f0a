// Package consumer reads pullsched topics with franz-go.
//
// Consumer is a group consumer that hands decoded records to a Handler and
// commits a record's offset only after the handler says its work is done,
// never past an unfinished record; it pauses partitions whose unfinished
// records pile up, blocks rebalances while a batch is in hand, commits on
// revoke, and sends records it cannot decode to the dead-letter topic with
// the reason in a header — as a reference (origin, size, a prefix) when a
// copy would be too large, so a dead letter never blocks a partition; see
// DeadLetter. ReadRange and Follow are plain (non-group)
// readers for topics every replica reads whole.
package consumer
