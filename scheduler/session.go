package scheduler

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// minSessionKey is the broker setting that bounds the session timeout a
// group member may ask for (Kafka's default 6000 ms).
const minSessionKey = "group.min.session.timeout.ms"

// groupTiming is the session timeout and heartbeat interval the
// scheduler's consumer group asks for.
type groupTiming struct {
	Session   time.Duration
	Heartbeat time.Duration
	// Raised is set when the broker's minimum was above the configured
	// session, so the session was raised to it.
	Raised bool
}

// timingFor returns the group timing for a wanted session and the broker's
// minimum session (0 if unknown). The heartbeat is a quarter of the
// session: a member learns of a rebalance within a quarter of the session,
// so a crashed replica's partitions move about 1.25 sessions after the
// crash, and three heartbeats may be lost before a live member is fenced.
func timingFor(want, brokerMin time.Duration) groupTiming {
	t := groupTiming{Session: want}
	if brokerMin > want {
		t.Session, t.Raised = brokerMin, true
	}
	t.Heartbeat = max(t.Session/4, 100*time.Millisecond)
	return t
}

// brokerMinSession reads group.min.session.timeout.ms from one broker.
func brokerMinSession(ctx context.Context, adm *kadm.Client) (time.Duration, error) {
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return 0, err
	}
	if len(md.Brokers) == 0 {
		return 0, fmt.Errorf("no brokers in metadata")
	}
	rcs, err := adm.DescribeBrokerConfigs(ctx, md.Brokers[0].NodeID)
	if err != nil {
		return 0, err
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			return 0, rc.Err
		}
		for _, c := range rc.Configs {
			if c.Key != minSessionKey || c.Value == nil {
				continue
			}
			ms, err := strconv.ParseInt(*c.Value, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s=%q: %w", minSessionKey, *c.Value, err)
			}
			return time.Duration(ms) * time.Millisecond, nil
		}
	}
	return 0, fmt.Errorf("broker does not report %s", minSessionKey)
}

// groupTiming asks the broker for its minimum session and logs what the
// group will use. A broker that cannot be asked (ACLs) gets the configured
// session; if it refuses it, joining fails with INVALID_SESSION_TIMEOUT,
// which names the setting.
func (s *Scheduler) groupTiming(ctx context.Context) groupTiming {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	brokerMin, err := brokerMinSession(ctx, s.adm)
	t := timingFor(s.cfg.SessionTimeout, brokerMin)
	switch {
	case err != nil:
		s.log.Warn().Err(err).Dur("session_timeout", t.Session).
			Msgf("could not read the broker's %s; asking for the configured session", minSessionKey)
	case t.Raised:
		s.log.Warn().Dur("session_timeout", t.Session).Dur("wanted", s.cfg.SessionTimeout).
			Msgf("the broker's %s is above --session-timeout, so a crashed replica's partitions move only after %v; lower it on the brokers to move them sooner", minSessionKey, t.Session)
	default:
		s.log.Info().Dur("session_timeout", t.Session).Dur("heartbeat_interval", t.Heartbeat).Msg("group timing")
	}
	return t
}
