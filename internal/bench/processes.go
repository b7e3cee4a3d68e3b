package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/stores/kafka"
	"github.com/flashsale/flashsale/stores/postgres"
	"github.com/flashsale/flashsale/stores/rabbitmq"
)

// Processes is the stack as the manifests deploy it: the API, the relay and each worker a
// process of its own, built from ./cmd, on databases and a namespace of their own and the
// suite's embedded Kafka broker. Some mechanisms act only when everything shares one process
// (see the README's "Performance"); the flash sale run on Processes shows what is left
// without them.
type Processes struct {
	URL      string
	Config   app.Config
	dir      string
	procs    []*process
	embedded *kafka.Embedded
}

type process struct {
	name string
	cmd  *exec.Cmd
	done chan error
}

// processesShardNames is the database name of shard i of the separate processes' databases.
const processesShardNames = "flashsale_bench_processes_shard_%d"

// Connections per shard of each process: the API's pool and each worker's must fit together
// in PostgreSQL's default max_connections (100) beside the in-process stack's idle pools.
const (
	processesAPIPool    = 10
	processesWorkerPool = 2
)

// workerBinaries are the worker commands, each started once.
var workerBinaries = []string{"relay", "payments-worker", "notifications-worker", "analytics-worker"}

// StartProcesses builds the binaries, prepares fresh databases and brokers, starts every
// process and waits until each is ready.
func StartProcesses(ctx context.Context, base app.Config, log *slog.Logger, progress io.Writer) (_ *Processes, err error) {
	if len(base.DatabaseShards) == 0 {
		return nil, errors.New("bench: no database shard configured")
	}
	p := &Processes{Config: base}
	defer func() {
		if err != nil {
			p.Close(context.WithoutCancel(ctx))
		}
	}()
	if p.dir, err = os.MkdirTemp("", "flashsale-bench-bin-"); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "processes: building ./cmd/api and the workers into %s\n", p.dir)
	if err := buildBinaries(ctx, p.dir); err != nil {
		return nil, err
	}

	cfg := &p.Config
	if cfg.DatabaseShards, err = shardURLs(base.DatabaseShards[0], len(base.DatabaseShards), processesShardNames); err != nil {
		return nil, err
	}
	cfg.Namespace = "bench-" + randomHex(4)
	cfg.JWTSecret = randomHex(32)
	if err := postgres.DropDatabases(ctx, cfg.DatabaseShards); err != nil {
		return nil, fmt.Errorf("drop the processes' databases: %w", err)
	}
	if err := app.Prepare(ctx, *cfg); err != nil {
		return nil, fmt.Errorf("prepare the processes' databases: %w", err)
	}
	brokers := cfg.KafkaBrokers
	if len(brokers) == 0 {
		if p.embedded, err = kafka.StartEmbedded(ctx, log); err != nil {
			return nil, err
		}
		brokers = p.embedded.Brokers()
	}
	if err := app.PrepareBrokers(ctx, *cfg, brokers); err != nil {
		return nil, err
	}

	common := []string{
		"DATABASE_SHARDS=" + strings.Join(cfg.DatabaseShards, ","),
		"KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"NAMESPACE=" + cfg.Namespace,
		"JWT_SECRET=" + cfg.JWTSecret,
		"ADMIN_EMAIL=" + cfg.AdminEmail,
		"ADMIN_PASSWORD=" + cfg.AdminPassword,
		"BCRYPT_COST=4", // registering thousands of buyers is otherwise all bcrypt
		"LOG_LEVEL=warn",
	}
	apiAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p.URL = "http://" + apiAddr
	// SHUTDOWN_DELAY=0s: no load balancer has to notice this API leave, so Close need not wait.
	if err := p.start("api", append(common, "HTTP_ADDR="+apiAddr, "DATABASE_POOL_SIZE="+strconv.Itoa(processesAPIPool), "SHUTDOWN_DELAY=0s"), p.URL); err != nil {
		return nil, err
	}
	for _, name := range workerBinaries {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		env := append(common, "WORKER_HTTP_ADDR="+addr, "DATABASE_POOL_SIZE="+strconv.Itoa(processesWorkerPool))
		if err := p.start(name, env, "http://"+addr); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(progress, "processes: API on %s; relay, payments, notifications and analytics each in a process of its own\n", p.URL)
	return p, nil
}

// buildBinaries builds the API and the workers into dir, from the module the suite runs in.
func buildBinaries(ctx context.Context, dir string) error {
	pkgs := []string{"./cmd/api"}
	for _, name := range workerBinaries {
		pkgs = append(pkgs, "./cmd/"+name)
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v: %w\n%s", pkgs, err, out)
	}
	return nil
}

// start runs binary name with the suite's environment and env on top, its output in a log
// file beside it, and waits until its /readyz answers 200.
func (p *Processes) start(name string, env []string, base string) error {
	logFile, err := os.Create(filepath.Join(p.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(p.dir, name))
	cmd.Env = append(os.Environ(), env...) // the later of two settings wins
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	pr := &process{name: name, cmd: cmd, done: make(chan error, 1)}
	go func() {
		pr.done <- cmd.Wait()
		logFile.Close()
	}()
	p.procs = append(p.procs, pr)
	return pr.awaitReady(base+"/readyz", filepath.Join(p.dir, name+".log"))
}

// awaitReady polls url until it answers 200, the process exits, or a minute passes.
func (pr *process) awaitReady(url, logPath string) error {
	deadline := time.Now().Add(time.Minute)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-pr.done:
			pr.done <- err
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("%s exited before it was ready (%v):\n%s", pr.name, err, tail(out, 2000))
		default:
		}
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s: %s not ready within a minute", pr.name, url)
}

// Close stops every process (SIGTERM, then SIGKILL after app.ShutdownTimeout), deletes the
// run's Redis keys and RabbitMQ queues, and removes the binaries. The databases stay for
// inspection until the next run.
func (p *Processes) Close(ctx context.Context) error {
	var errs []error
	for i := len(p.procs) - 1; i >= 0; i-- { // the workers first, the API last
		pr := p.procs[i]
		_ = pr.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-pr.done:
		case <-time.After(app.ShutdownTimeout):
			_ = pr.cmd.Process.Kill()
			<-pr.done
			errs = append(errs, fmt.Errorf("%s did not stop within %s of SIGTERM", pr.name, app.ShutdownTimeout))
		}
	}
	if p.Config.Namespace != "" {
		if client, err := app.OpenRedis(ctx, p.Config); err == nil {
			errs = append(errs, deleteKeys(ctx, client, p.Config.Namespace))
			client.Close()
		}
		errs = append(errs, rabbitmq.Delete(ctx, p.Config.RabbitMQURL, p.Config.Topology()))
	}
	if p.embedded != nil {
		p.embedded.Close()
	}
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
	return errors.Join(errs...)
}

// runProcesses runs the flash sale on Processes, with the in-process stack idle beside it.
func runProcesses(ctx context.Context, cfg Config, st *Stack, progress io.Writer) (*FlashSaleResult, error) {
	closeIdle(st.API)
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	services := cfg.Services
	services.AdminEmail, services.AdminPassword = cfg.AdminEmail, cfg.AdminPassword
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	p, err := StartProcesses(startCtx, services, log, progress)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("start the processes: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*app.ShutdownTimeout)
		defer cancel()
		if err := p.Close(closeCtx); err != nil {
			fmt.Fprintf(progress, "processes: close: %v\n", err)
		}
	}()
	return flashSaleRounds(ctx, cfg, p.URL, nil, p.Config.Namespace[len("bench-"):], progress)
}

// freeAddr returns a loopback address with a port nothing listens on just now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
