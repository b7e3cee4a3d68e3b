package e2e_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/kafka"
	"github.com/flashsale/flashsale/stores/rabbitmq"
)

// The binaries a deployment runs, each its own process.
var binaries = []string{"api", "relay", "payments-worker", "notifications-worker", "analytics-worker"}

// buildBinaries builds the deployment's binaries into a directory of the test's.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, b := range binaries {
		args = append(args, "./cmd/"+b)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = ".." // the module's root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return dir
}

// deployment is the shop as separate processes on this machine, with the test's shards,
// Redis prefix, RabbitMQ names and an embedded Kafka broker the test runs.
type deployment struct {
	t      *testing.T
	bin    string
	env    []string
	cfg    app.Config // the names the processes derive from NAMESPACE
	shards []string
	broker *kafka.Embedded

	mu    sync.Mutex
	procs []*process
}

// process is one running binary.
type process struct {
	name string
	cmd  *exec.Cmd
	addr string // its HTTP address: the API's, or a worker's ops endpoints
	log  string // the file of its stderr
	done chan struct{}
	err  error // Wait's, once done is closed
}

func newDeployment(t *testing.T) *deployment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	broker, err := kafka.StartEmbedded(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("start the Kafka broker: %v", err)
	}
	t.Cleanup(broker.Close)
	secret := make([]byte, 32)
	rand.Read(secret)
	d := &deployment{t: t, bin: buildBinaries(t), broker: broker}
	d.cfg = app.Config{Namespace: testenv.Name(), RabbitMQURL: testenv.RabbitURL(t)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := rabbitmq.Delete(ctx, d.cfg.RabbitMQURL, d.cfg.Topology()); err != nil {
			t.Errorf("delete the RabbitMQ topology: %v", err)
		}
	})
	// Up to eight processes share the PostgreSQL of 100 connections that other tests use:
	// one shard, two connections for each worker and four for each API (apiPoolSize), the
	// least each works with, keep them under twenty-five.
	d.shards = testenv.Shards(t, 1)
	d.env = append(os.Environ(),
		"DATABASE_SHARDS="+strings.Join(d.shards, ","),
		"DATABASE_POOL_SIZE=2",
		"REDIS_URL="+testenv.RedisURL(t),
		"RABBITMQ_URL="+d.cfg.RabbitMQURL,
		"KAFKA_BROKERS="+strings.Join(broker.Brokers(), ","),
		"NAMESPACE="+d.cfg.Namespace,
		"JWT_SECRET="+hex.EncodeToString(secret),
		"ADMIN_EMAIL="+apitest.AdminEmail,
		"ADMIN_PASSWORD="+apitest.AdminPassword,
		"BCRYPT_COST=4",
		"RATE_LIMIT_OFF=true", // the load comes from one machine
		"SHUTDOWN_DELAY=1s",
		"LOG_LEVEL=info",
		"APP_ENV=development",
	)
	t.Cleanup(d.killAll)
	return d
}

// apiPoolSize is an API's connections per shard in these tests: the order writes alone keep
// two busy while they wait for the reservations' records.
const apiPoolSize = "4"

// start starts binary as a process named name, on a free port of its own.
func (d *deployment) start(name, binary string) *process {
	d.t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(d.t)))
	p := &process{name: name, addr: addr, log: filepath.Join(d.t.TempDir(), name+".log"), done: make(chan struct{})}
	logFile, err := os.Create(p.log)
	if err != nil {
		d.t.Fatal(err)
	}
	p.cmd = exec.Command(filepath.Join(d.bin, binary))
	p.cmd.Env = append(d.env, "WORKER_HTTP_ADDR="+addr)
	if binary == "api" {
		p.cmd.Env = append(d.env, "HTTP_ADDR="+addr, "DATABASE_POOL_SIZE="+apiPoolSize)
	}
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		d.t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	d.mu.Lock()
	d.procs = append(d.procs, p)
	d.mu.Unlock()
	return p
}

// ready reports nil once the process answers /readyz with 200.
func (p *process) ready() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail())
	default:
	}
	resp, err := http.Get("http://" + p.addr + "/readyz")
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: /readyz %d %s", p.name, resp.StatusCode, body)
	}
	return nil
}

// stop sends SIGTERM, as Kubernetes does, and fails the test unless the process exits
// cleanly in time.
func (p *process) stop(t *testing.T, within time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM %s: %v", p.name, err)
		return
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("%s exited with %v after SIGTERM; want 0\n%s", p.name, p.err, p.tail())
		}
	case <-time.After(within):
		t.Errorf("%s did not exit within %v of SIGTERM\n%s", p.name, within, p.tail())
	}
}

// tail returns the last lines of the process's log.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// killAll kills whatever still runs.
func (d *deployment) killAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.procs {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// balancer sends each request to the next ready API, as a Kubernetes Service does with the
// endpoints whose readiness probe passes: it polls every API's /readyz.
type balancer struct {
	mu   sync.Mutex
	apis []*process
	up   map[*process]bool
	next atomic.Uint64
	srv  *httptest.Server
}

func newBalancer(t *testing.T) *balancer {
	b := &balancer{up: map[*process]bool{}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			if p := b.pick(); p != nil {
				r.SetURL(&url.URL{Scheme: "http", Host: p.addr})
			}
			r.SetXForwarded()
		},
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
	}
	b.srv = httptest.NewServer(proxy)
	t.Cleanup(b.srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for ctx.Err() == nil {
			b.mu.Lock()
			apis := append([]*process(nil), b.apis...)
			b.mu.Unlock()
			for _, p := range apis {
				ok := p.ready() == nil
				b.mu.Lock()
				b.up[p] = ok
				b.mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return b
}

// add makes p an endpoint, and remove takes it out as a deleted pod's address goes.
func (b *balancer) add(p *process) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.apis = append(b.apis, p)
}

func (b *balancer) remove(p *process) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, q := range b.apis {
		if q == p {
			b.apis = append(b.apis[:i], b.apis[i+1:]...)
			break
		}
	}
	delete(b.up, p)
}

func (b *balancer) pick() *process {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ready []*process
	for _, p := range b.apis {
		if b.up[p] {
			ready = append(ready, p)
		}
	}
	if len(ready) == 0 {
		return nil // the proxy answers 502: a lost request
	}
	return ready[b.next.Add(1)%uint64(len(ready))]
}

// isUp reports whether the balancer sends requests to p.
func (b *balancer) isUp(p *process) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.up[p]
}
