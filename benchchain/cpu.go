package benchchain

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go runs on.
const clockTick = 100

// procCPU is the user+system CPU time process pid has used, from
// /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses and
// may hold spaces, so fields are counted after its closing parenthesis.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("benchchain: unreadable stat line %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("benchchain: short stat line %q", stat)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("benchchain: bad CPU times in stat line %q", stat)
	}
	return time.Duration(u+s) * time.Second / clockTick, nil
}

// selfCPU is the user+system CPU time of this process.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter samples the CPU time of named parts; parts with the same name
// (the invokers) add up.
type cpuMeter struct {
	pids map[string][]int // part name -> pids; "bench" is this process
}

func (m cpuMeter) sample() map[string]time.Duration {
	out := map[string]time.Duration{"bench": selfCPU()}
	for name, pids := range m.pids {
		for _, pid := range pids {
			if d, err := procCPU(pid); err == nil {
				out[name] += d
			}
		}
	}
	return out
}

// perRequest is the CPU milliseconds per request each part spent between
// two samples.
func perRequest(before, after map[string]time.Duration, requests int) map[string]float64 {
	out := map[string]float64{}
	if requests == 0 {
		return out
	}
	for name, a := range after {
		d := a - before[name]
		out[name] = float64(d.Microseconds()) / 1e3 / float64(requests)
	}
	return out
}
