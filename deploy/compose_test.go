package deploy

import (
	"bufio"
	"context"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose parses compose.yaml as `docker compose --env-file` would, with env as the only
// environment, so that a variable the file needs and does not default shows up as empty.
func loadCompose(t *testing.T, envFiles ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"},
		cli.WithWorkingDirectory("."),
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithName("flashsale"),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load compose.yaml: %v", err)
	}
	return p
}

// binaryOf is the flashsale binary a service built from the Dockerfile runs.
func binaryOf(s types.ServiceConfig) string {
	if len(s.Command) > 0 {
		return path.Base(s.Command[0])
	}
	return "api" // the image's entrypoint
}

// oneShot reports whether s runs once (the migration): it is not restarted, and what
// depends on it waits for it to complete rather than to be healthy.
func oneShot(s types.ServiceConfig) bool { return s.Restart == types.RestartPolicyNo }

func TestComposeFile(t *testing.T) {
	t.Parallel()
	settings := readSettings(t)
	for _, tc := range []struct {
		name     string
		envFiles []string
	}{
		{"with .env.example", []string{filepath.Join(repoRoot, ".env.example")}},
		{"without an env file", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := loadCompose(t, tc.envFiles...)
			running := map[string]bool{}
			for name, s := range p.Services {
				if s.Build == nil {
					continue // a dependency's own image
				}
				if s.Build.Dockerfile != "deploy/Dockerfile" {
					t.Errorf("service %s builds %q, want deploy/Dockerfile", name, s.Build.Dockerfile)
				}
				bin := binaryOf(s)
				if services[bin] == nil {
					t.Errorf("service %s runs %q, which is not a service binary under cmd/", name, bin)
					continue
				}
				if !oneShot(s) {
					running[bin] = true
				}
				for key, value := range s.Environment {
					st, listed := settings[key]
					switch {
					case !listed:
						t.Errorf("service %s passes %s, which the README's settings table does not list", name, key)
					case !st.readsIt(bin):
						t.Errorf("service %s passes %s to %s, which the README says only %v read", name, key, bin, st.readBy)
					}
					if value != nil && strings.Contains(*value, "${") {
						t.Errorf("service %s: %s = %q was not interpolated", name, key, *value)
					}
				}
				if env := s.Environment["DATABASE_SHARDS"]; env == nil || len(strings.Split(*env, ",")) != 4 {
					t.Errorf("service %s: DATABASE_SHARDS = %v, want the four shard URLs", name, env)
				}
			}
			for bin := range services {
				if !running[bin] {
					t.Errorf("no long-running service runs %s", bin)
				}
			}
			for name, s := range p.Services {
				if !oneShot(s) && (s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0) {
					t.Errorf("service %s has no healthcheck", name)
				}
				for dep, d := range s.DependsOn {
					target, ok := p.Services[dep]
					if !ok {
						t.Errorf("service %s depends on %s, which does not exist", name, dep)
						continue
					}
					want := types.ServiceConditionHealthy
					if oneShot(target) {
						want = types.ServiceConditionCompletedSuccessfully
					}
					if d.Condition != want {
						t.Errorf("service %s depends on %s with condition %q, want %q", name, dep, d.Condition, want)
					}
				}
			}
			// The workers consume queues and a topic that the relay declares; started
			// before it they would find none.
			for _, bin := range []string{"payments-worker", "notifications-worker", "analytics-worker"} {
				for name, s := range p.Services {
					if s.Build != nil && binaryOf(s) == bin {
						if _, ok := s.DependsOn["relay"]; !ok {
							t.Errorf("service %s does not wait for the relay", name)
						}
					}
				}
			}
		})
	}
}

var interpolated = regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*)`)

// Every variable of .env.example is one compose.yaml uses, and every variable compose.yaml
// uses is in .env.example, so that the example documents the whole of it.
func TestEnvExampleMatchesCompose(t *testing.T) {
	t.Parallel()
	compose, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, m := range interpolated.FindAllStringSubmatch(string(compose), -1) {
		used[m[1]] = true
	}
	f, err := os.Open(filepath.Join(repoRoot, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	listed := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, _, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf(".env.example: %q is not KEY=value", line)
			continue
		}
		listed[key] = true
		if !used[key] {
			t.Errorf(".env.example sets %s, which compose.yaml does not use", key)
		}
	}
	for key := range used {
		if !listed[key] {
			t.Errorf("compose.yaml uses ${%s}, which .env.example does not list", key)
		}
	}
}

// The image's user is a number, which Kubernetes' runAsNonRoot can verify, and the image
// carries the healthcheck probe the compose file calls.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var user string
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "USER "); ok {
			user = strings.TrimSpace(rest)
		}
	}
	if !regexp.MustCompile(`^[1-9][0-9]*(:[0-9]+)?$`).MatchString(user) {
		t.Errorf("Dockerfile's last USER is %q, want a non-zero uid (and gid) by number", user)
	}
	if !strings.Contains(string(b), "./deploy/healthcheck") {
		t.Error("Dockerfile does not build ./deploy/healthcheck, which the compose healthchecks run")
	}
}
