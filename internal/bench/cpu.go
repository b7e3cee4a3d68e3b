package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CPUUse is the CPU, in core-seconds, that each party used over a span of a benchmark: the
// answer to "where did the two cores go". This process holds the load generator, and, on
// the in-process stack, the API and every worker too.
type CPUUse struct {
	Seconds     float64 `json:"seconds"` // the span's wall time
	Busy        float64 `json:"busy"`    // the whole machine
	ThisProcess float64 `json:"this_process"`
	Postgres    float64 `json:"postgres"`
	RabbitMQ    float64 `json:"rabbitmq"`
	Redis       float64 `json:"redis"`
	// Other is the rest of Busy: the kernel's own threads and any other process.
	Other float64 `json:"other"`
}

// The process names (comm) of the services whose CPU is told apart.
var cpuParties = map[string]string{"postgres": "postgres", "beam.smp": "rabbitmq", "redis-server": "redis"}

// userHZ is the unit of /proc's CPU times; 100 on every Linux the project runs on.
const userHZ = 100

// cpuSample is one reading of /proc: the machine's busy time and each watched process's.
type cpuSample struct {
	at    time.Time
	busy  int64
	procs map[int]int64 // pid → utime+stime, in ticks
}

// cpuRecorder samples the CPU of this process and of the services' processes found when it
// started. PostgreSQL's backends are those of pools opened before the burst, which keep
// their connections through it; a backend started later is not counted.
type cpuRecorder struct {
	pids    map[int]string // pid → party
	stop    context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	samples []cpuSample
}

// cpuEvery is the sampling period: fine enough to split a burst at its sell-out, which
// comes 0.5-1 s in, while reading about thirty small files ten times a second.
const cpuEvery = 100 * time.Millisecond

// startCPU starts sampling, or returns nil where /proc cannot be read (not Linux).
func startCPU() *cpuRecorder {
	pids, ok := watchedPIDs()
	if !ok {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &cpuRecorder{pids: pids, stop: cancel, done: make(chan struct{})}
	r.sample()
	go func() {
		defer close(r.done)
		t := time.NewTicker(cpuEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				r.sample()
				return
			case <-t.C:
				r.sample()
			}
		}
	}()
	return r
}

// end stops sampling.
func (r *cpuRecorder) end() {
	if r == nil {
		return
	}
	r.stop()
	<-r.done
}

// use is the CPU used between the samples nearest to from and to.
func (r *cpuRecorder) use(from, to time.Time) *CPUUse {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a, b := r.nearest(from), r.nearest(to)
	if a == nil || b == nil || !b.at.After(a.at) {
		return nil
	}
	u := &CPUUse{Seconds: seconds(b.at.Sub(a.at)), Busy: ticks(b.busy - a.busy)}
	for pid, after := range b.procs {
		before, ok := a.procs[pid]
		if !ok || after < before {
			continue
		}
		d := ticks(after - before)
		switch r.pids[pid] {
		case "self":
			u.ThisProcess += d
		case "postgres":
			u.Postgres += d
		case "rabbitmq":
			u.RabbitMQ += d
		case "redis":
			u.Redis += d
		}
	}
	u.Other = max(0, u.Busy-u.ThisProcess-u.Postgres-u.RabbitMQ-u.Redis)
	for _, v := range []*float64{&u.ThisProcess, &u.Postgres, &u.RabbitMQ, &u.Redis, &u.Other} {
		*v = round3(*v)
	}
	return u
}

func (r *cpuRecorder) nearest(t time.Time) *cpuSample {
	var best *cpuSample
	for i := range r.samples {
		s := &r.samples[i]
		if best == nil || s.at.Sub(t).Abs() < best.at.Sub(t).Abs() {
			best = s
		}
	}
	return best
}

func (r *cpuRecorder) sample() {
	s := cpuSample{at: time.Now(), procs: make(map[int]int64, len(r.pids))}
	s.busy, _ = machineBusy()
	for pid := range r.pids {
		if t, ok := processTicks(pid); ok {
			s.procs[pid] = t
		}
	}
	r.mu.Lock()
	r.samples = append(r.samples, s)
	r.mu.Unlock()
}

// watchedPIDs finds this process and the services' processes.
func watchedPIDs() (map[int]string, bool) {
	if _, ok := machineBusy(); !ok {
		return nil, false
	}
	pids := map[int]string{os.Getpid(): "self"}
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, false
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(d + "/comm")
		if err != nil {
			continue
		}
		if party, ok := cpuParties[strings.TrimSpace(string(comm))]; ok {
			pids[pid] = party
		}
	}
	return pids, true
}

// machineBusy reads the ticks every CPU spent other than idle or waiting for I/O.
func machineBusy() (int64, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return 0, false
	}
	var busy int64
	for i, v := range f[1:8] { // user nice system idle iowait irq softirq
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false
		}
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return busy, true
}

// processTicks reads a process's user and system time.
func processTicks(pid int) (int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name may hold spaces; the fields after it are plain.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return utime + stime, true
}

func ticks(n int64) float64 { return float64(n) / userHZ }
