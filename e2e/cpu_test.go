package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuMeter counts the CPU time the path's processes spend: this one (the
// publisher, ingest, and the embedded broker and engine when they are
// used) and, when their pid files are named (services.sh env does), the
// Kafka broker and the ClickHouse server. A benchmark reads it as CPU per
// event: with every process's share, the cores the machine has bound the
// rate the path can reach, whatever else runs beside it.
type cpuMeter struct {
	procs []string // "test", then the services found
	files map[string]string
}

func newCPUMeter(external map[string]string) *cpuMeter {
	m := &cpuMeter{procs: []string{"test"}, files: map[string]string{}}
	for _, name := range []string{"kafka", "clickhouse"} {
		if f := external[name]; f != "" {
			m.procs = append(m.procs, name)
			m.files[name] = f
		}
	}
	return m
}

// sample is each process's CPU time so far; a process it cannot read
// counts 0 (so a delta over a restart is wrong, and benchmarks restart
// nothing).
func (m *cpuMeter) sample() map[string]time.Duration {
	out := map[string]time.Duration{}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		out["test"] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for name, f := range m.files {
		if d, err := procCPU(f); err == nil {
			out[name] = d
		}
	}
	return out
}

// report adds "<proc>_cpu_µs/event" metrics for the time between from and
// to, over n events, with the given prefix, and returns the total.
func (m *cpuMeter) report(b *testing.B, prefix string, from, to map[string]time.Duration, n int) time.Duration {
	var total time.Duration
	for _, p := range m.procs {
		d := to[p] - from[p]
		total += d
		b.ReportMetric(float64(d.Microseconds())/float64(n), prefix+p+"_cpu_µs/event")
	}
	b.ReportMetric(float64(total.Microseconds())/float64(n), prefix+"cpu_µs/event")
	return total
}

// procCPU is the user + system CPU time of the process whose pid is in
// pidFile, from /proc/<pid>/stat (fields 14 and 15, in USER_HZ = 100 ticks
// per second on Linux).
func procCPU(pidFile string) (time.Duration, error) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, err
	}
	stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(stat))
}

// parseStatCPU reads utime + stime from a /proc/<pid>/stat line. The
// command name (field 2) is in parentheses and may hold spaces, so the
// fields are counted from its closing parenthesis.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc stat: no command name in %q", stat)
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields after the command name, want ≥ 13", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] { // fields 14 and 15
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc stat: %w", err)
		}
		ticks += v
	}
	return time.Duration(ticks) * (time.Second / 100), nil
}

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		stat string
		want time.Duration
		bad  bool
	}{
		{"11719 (java) S 1 11718 11718 0 -1 4194560 70000 0 12 0 1972 150 0 0 20 0 70 0 100 8922464000 104308 18446744073709551615", 21220 * time.Millisecond, false},
		{"42 (a) b (c)) R 1 2 3 4 5 6 7 8 9 10 3 4 0", 70 * time.Millisecond, false},
		{"42 java S 1 2", 0, true},
		{"42 (x) S 1 2 3", 0, true},
		{"42 (x) S 1 2 3 4 5 6 7 8 9 10 u 4 0", 0, true},
	} {
		got, err := parseStatCPU(tc.stat)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parseStatCPU(%q) = %v, %v; want %v (error %v)", tc.stat, got, err, tc.want, tc.bad)
		}
	}
}
