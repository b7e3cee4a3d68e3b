package bench

import (
	"runtime"
	"testing"
	"time"
)

func TestCPUUseSplitsTheMachineByParty(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := &cpuRecorder{
		pids: map[int]string{1: "self", 2: "postgres", 3: "postgres", 4: "rabbitmq", 5: "redis"},
		samples: []cpuSample{
			{at: t0, busy: 1000, procs: map[int]int64{1: 100, 2: 10, 3: 50, 4: 7, 5: 1}},
			{at: t0.Add(time.Second), busy: 1190, procs: map[int]int64{1: 200, 2: 40, 4: 27, 5: 6}},
			{at: t0.Add(2 * time.Second), busy: 1300, procs: map[int]int64{1: 260, 2: 60, 4: 37, 5: 6}},
		},
	}
	// Between the first two samples: backend 3 exited (its time is not counted) and the rest
	// of the machine's 1.9 core-s is other.
	got := r.use(t0.Add(10*time.Millisecond), t0.Add(990*time.Millisecond))
	want := CPUUse{Seconds: 1, Busy: 1.9, ThisProcess: 1, Postgres: 0.3, RabbitMQ: 0.2, Redis: 0.05, Other: 0.35}
	if got == nil || *got != want {
		t.Errorf("use = %+v, want %+v", got, want)
	}
	if got := r.use(t0.Add(2*time.Second), t0.Add(2*time.Second)); got != nil {
		t.Errorf("use of an empty span = %+v, want nil", got)
	}
	var none *cpuRecorder
	if got := none.use(t0, t0.Add(time.Second)); got != nil {
		t.Errorf("use without a recorder = %+v, want nil", got)
	}
}

func TestCPURecorderReadsThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("no /proc here: the CPU split is left out of the results")
	}
	r := startCPU()
	if r == nil {
		t.Fatal("startCPU found /proc but could not read it")
	}
	start := time.Now()
	for x := 0; time.Since(start) < 300*time.Millisecond; x++ { // keep a core busy
		_ = x * x
	}
	r.end()
	u := r.use(start, time.Now())
	// The two files are read a moment apart: allow the machine's figure a tick less.
	if u == nil || u.ThisProcess <= 0 || u.Busy+0.01 < u.ThisProcess {
		t.Errorf("after 300ms of work: %+v; want this process's time, within the machine's", u)
	}
}
