package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	keda "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/flashsale/flashsale/app"
)

// typed are the kinds with Go types: each object is decoded into its type strictly, so a
// misspelt or misplaced field fails the test as the API server would refuse it.
var typed = map[string]func() any{
	"v1/ConfigMap":                           func() any { return new(corev1.ConfigMap) },
	"v1/Secret":                              func() any { return new(corev1.Secret) },
	"v1/Service":                             func() any { return new(corev1.Service) },
	"v1/ServiceAccount":                      func() any { return new(corev1.ServiceAccount) },
	"apps/v1/Deployment":                     func() any { return new(appsv1.Deployment) },
	"apps/v1/StatefulSet":                    func() any { return new(appsv1.StatefulSet) },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"policy/v1/PodDisruptionBudget":          func() any { return new(policyv1.PodDisruptionBudget) },
	"batch/v1/Job":                           func() any { return new(batchv1.Job) },
	"networking.k8s.io/v1/Ingress":           func() any { return new(networkingv1.Ingress) },
	"networking.k8s.io/v1/NetworkPolicy":     func() any { return new(networkingv1.NetworkPolicy) },
	"keda.sh/v1alpha1/ScaledObject":          func() any { return new(keda.ScaledObject) },
	"keda.sh/v1alpha1/TriggerAuthentication": func() any { return new(keda.TriggerAuthentication) },
}

// operatorKinds are the operators' kinds this project has no Go types for: each is decoded
// into unstructured and must have the fields named (dot-separated paths), without which its
// operator would refuse it or do nothing useful.
var operatorKinds = map[string][]string{
	"postgresql.cnpg.io/v1/Cluster":           {"spec.instances", "spec.storage.size", "spec.bootstrap.initdb.database", "spec.postgresql.parameters.max_connections"},
	"postgresql.cnpg.io/v1/Pooler":            {"spec.cluster.name", "spec.instances", "spec.type", "spec.pgbouncer.poolMode", "spec.pgbouncer.parameters.max_client_conn", "spec.pgbouncer.parameters.default_pool_size"},
	"rabbitmq.com/v1beta1/RabbitmqCluster":    {"spec.replicas", "spec.persistence.storage", "spec.resources.requests"},
	"kafka.strimzi.io/v1beta2/Kafka":          {"spec.kafka.listeners", "spec.kafka.config", "spec.entityOperator.topicOperator"},
	"kafka.strimzi.io/v1beta2/KafkaNodePool":  {"spec.replicas", "spec.roles", "spec.storage.type"},
	"kafka.strimzi.io/v1beta2/KafkaTopic":     {"spec.partitions", "spec.replicas"},
	"monitoring.coreos.com/v1/ServiceMonitor": {"spec.selector", "spec.endpoints"},
	"monitoring.coreos.com/v1/PodMonitor":     {"spec.selector", "spec.podMetricsEndpoints"},
}

// object is one decoded object of a build.
type object struct {
	kind, name string
	value      any // a pointer to its Go type, or *unstructured.Unstructured
}

// build runs `kubectl kustomize dir` and decodes every object it prints.
func build(t *testing.T, dir string) []object {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl, which builds the kustomizations, is not installed: %v", err)
	}
	out, err := exec.Command(kubectl, "kustomize", dir).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr)
	}
	return decodeAll(t, dir, out)
}

// decodeAll decodes each document of a multi-document YAML stream.
func decodeAll(t *testing.T, source string, stream []byte) []object {
	t.Helper()
	var objs []object
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		objs = append(objs, decode(t, source, doc))
	}
	if len(objs) == 0 {
		t.Fatalf("%s: no objects", source)
	}
	return objs
}

func decode(t *testing.T, source string, doc []byte) object {
	t.Helper()
	var u unstructured.Unstructured
	if err := yaml.Unmarshal(doc, &u.Object); err != nil {
		t.Fatalf("%s: %v", source, err)
	}
	gvk := u.GetAPIVersion() + "/" + u.GetKind()
	o := object{kind: u.GetKind(), name: u.GetName()}
	if o.name == "" {
		t.Errorf("%s: a %s without a name", source, gvk)
	}
	if newValue, ok := typed[gvk]; ok {
		o.value = newValue()
		if err := yaml.UnmarshalStrict(doc, o.value); err != nil {
			t.Errorf("%s: %s %s does not decode strictly: %v", source, gvk, o.name, err)
		}
		return o
	}
	required, ok := operatorKinds[gvk]
	if !ok {
		t.Errorf("%s: %s %s is of a kind this test does not know; add its Go type or its required fields", source, gvk, o.name)
	}
	for _, path := range required {
		if v, found, _ := unstructured.NestedFieldNoCopy(u.Object, strings.Split(path, ".")...); !found || v == nil {
			t.Errorf("%s: %s %s lacks %s", source, gvk, o.name, path)
		}
	}
	o.value = &u
	return o
}

// each returns the objects of type T.
func each[T any](objs []object) []*T {
	var out []*T
	for _, o := range objs {
		if v, ok := o.value.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

// kustomizations are the directories under k8s/ that build on their own (components do not).
func kustomizations(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir("k8s", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "kustomization.yaml" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), "kind: Component") {
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// The application's variants: with KEDA (the default) and with CPU autoscalers only.
var applications = []string{"k8s", "k8s/without-keda"}

// Every kustomization builds, and every object in it decodes strictly into its Go type or
// has its operator's required fields.
func TestKustomizationsBuild(t *testing.T) {
	t.Parallel()
	dirs := kustomizations(t)
	for _, want := range append([]string{"k8s/migrate", "k8s/data"}, applications...) {
		if !containsString(dirs, want) {
			t.Errorf("no kustomization in %s", want)
		}
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			objs := build(t, dir)
			for _, pod := range podsOf(objs) {
				checkPod(t, pod.name, pod.spec)
			}
			// A Job's template cannot change: one kept past its run would make a later apply
			// with another image fail. Each goes away by itself, and none is in the
			// application, which is applied on every release.
			for _, j := range each[batchv1.Job](objs) {
				if j.Spec.TTLSecondsAfterFinished == nil {
					t.Errorf("%s: Job %s is kept forever after it finishes (no ttlSecondsAfterFinished)", dir, j.Name)
				}
				if containsString(applications, dir) || dir == "k8s/app" {
					t.Errorf("%s: Job %s: the application is applied on every release; run it from its own kustomization", dir, j.Name)
				}
			}
		})
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

type pod struct {
	name string
	spec corev1.PodSpec
}

func podsOf(objs []object) []pod {
	var pods []pod
	for _, d := range each[appsv1.Deployment](objs) {
		pods = append(pods, pod{"Deployment " + d.Name, d.Spec.Template.Spec})
	}
	for _, s := range each[appsv1.StatefulSet](objs) {
		pods = append(pods, pod{"StatefulSet " + s.Name, s.Spec.Template.Spec})
	}
	for _, j := range each[batchv1.Job](objs) {
		pods = append(pods, pod{"Job " + j.Name, j.Spec.Template.Spec})
	}
	return pods
}

// checkPod asserts what every pod of the project must have: a restricted security context
// with a numeric user, and on every container a pinned image, resource requests and a memory
// limit. Long-running containers also need liveness and readiness probes on a declared port.
func checkPod(t *testing.T, name string, spec corev1.PodSpec) {
	t.Helper()
	sc := spec.SecurityContext
	switch {
	case sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Errorf("%s: runAsNonRoot is not set", name)
	case sc.RunAsUser == nil || *sc.RunAsUser == 0:
		t.Errorf("%s: no numeric non-root runAsUser", name)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("%s: seccompProfile is not RuntimeDefault", name)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: mounts a service account token it does not use", name)
	}
	oneShot := spec.RestartPolicy == corev1.RestartPolicyNever || spec.RestartPolicy == corev1.RestartPolicyOnFailure
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		where := fmt.Sprintf("%s, container %s", name, c.Name)
		if tag := imageTag(c.Image); tag == "" || tag == "latest" {
			t.Errorf("%s: image %q is not pinned to a tag or digest", where, c.Image)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			t.Errorf("%s: no CPU and memory requests", where)
		}
		if c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: no memory limit", where)
		}
		csc := c.SecurityContext
		switch {
		case csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation:
			t.Errorf("%s: allowPrivilegeEscalation is not false", where)
		case csc.Capabilities == nil || !containsCapability(csc.Capabilities.Drop, "ALL"):
			t.Errorf("%s: does not drop every capability", where)
		case csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem:
			t.Errorf("%s: root filesystem is writable", where)
		case csc.Privileged != nil && *csc.Privileged:
			t.Errorf("%s: privileged", where)
		}
		if oneShot || containsString(initNames(spec), c.Name) {
			continue
		}
		for probeName, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			if p == nil {
				t.Errorf("%s: no %s probe", where, probeName)
				continue
			}
			if p.HTTPGet != nil && p.HTTPGet.Port.StrVal != "" && !declaresPort(c, p.HTTPGet.Port.StrVal) {
				t.Errorf("%s: %s probe on port %q, which the container does not declare", where, probeName, p.HTTPGet.Port.StrVal)
			}
		}
	}
}

func initNames(spec corev1.PodSpec) []string {
	var names []string
	for _, c := range spec.InitContainers {
		names = append(names, c.Name)
	}
	return names
}

func containsCapability(caps []corev1.Capability, want corev1.Capability) bool {
	for _, c := range caps {
		if c == want {
			return true
		}
	}
	return false
}

func declaresPort(c corev1.Container, name string) bool {
	for _, p := range c.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

// imageTag is an image's tag, or its digest; "" when it has neither.
func imageTag(image string) string {
	if _, digest, ok := strings.Cut(image, "@"); ok {
		return digest
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[i+1:]
	}
	return ""
}

// Each application variant runs every service binary as its own Deployment, scaled by exactly
// one autoscaler, spared by a disruption budget, and configured only with settings the
// README's table lists.
func TestApplication(t *testing.T) {
	t.Parallel()
	settings := readSettings(t)
	cfg := app.Config{}
	for _, dir := range applications {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			objs := build(t, dir)
			deployments := map[string]*appsv1.Deployment{}
			for _, d := range each[appsv1.Deployment](objs) {
				deployments[d.Name] = d
			}
			for bin := range services {
				d, ok := deployments[bin]
				if !ok {
					t.Errorf("no Deployment %s", bin)
					continue
				}
				if got := d.Spec.Template.Spec.Containers[0].Command; len(got) == 0 || got[0] != "/usr/local/bin/"+bin {
					t.Errorf("Deployment %s runs %v, want /usr/local/bin/%s", bin, got, bin)
				}
			}

			// One autoscaler per Deployment: two would fight over its replicas.
			maxReplicas := map[string]int32{}
			scalers := map[string]int{}
			for _, h := range each[autoscalingv2.HorizontalPodAutoscaler](objs) {
				scalers[h.Spec.ScaleTargetRef.Name]++
				maxReplicas[h.Spec.ScaleTargetRef.Name] = h.Spec.MaxReplicas
				if h.Spec.ScaleTargetRef.Kind != "Deployment" || deployments[h.Spec.ScaleTargetRef.Name] == nil {
					t.Errorf("HorizontalPodAutoscaler %s scales %s %s, which is not a Deployment here", h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
				}
			}
			for _, so := range each[keda.ScaledObject](objs) {
				checkScaledObject(t, so, cfg, objs)
				target := so.Spec.ScaleTargetRef.Name
				scalers[target]++
				maxReplicas[target] = so.GetHPAMaxReplicas()
				if deployments[target] == nil {
					t.Errorf("ScaledObject %s scales %s, which is not a Deployment here", so.Name, target)
				}
			}
			for name, d := range deployments {
				if scalers[name] != 1 {
					t.Errorf("Deployment %s has %d autoscalers, want 1", name, scalers[name])
				}
				if d.Spec.Replicas != nil {
					t.Errorf("Deployment %s sets replicas, which every apply would reset under its autoscaler", name)
				}
				if !hasBudget(objs, d) {
					t.Errorf("Deployment %s has no PodDisruptionBudget", name)
				}
				checkSettings(t, "Deployment "+name, d.Spec.Template.Spec, settings)
			}
			if len(maxReplicas) > 0 {
				t.Logf("%s: most replicas %v", dir, maxReplicas)
			}
			for _, cm := range each[corev1.ConfigMap](objs) {
				for key := range cm.Data {
					if _, ok := settings[key]; !ok && !goRuntime[key] {
						t.Errorf("ConfigMap %s holds %s, which the README's settings table does not list", cm.Name, key)
					}
				}
			}
			checkIngress(t, objs, cfg)
			checkNetworkPolicies(t, objs, deployments)
		})
	}
}

// checkScaledObject validates a ScaledObject with KEDA's own checks, and that its triggers
// watch the queue or topic its worker consumes, by the names the binaries declare.
func checkScaledObject(t *testing.T, so *keda.ScaledObject, cfg app.Config, objs []object) {
	t.Helper()
	if err := keda.ValidateTriggers(so.Spec.Triggers); err != nil {
		t.Errorf("ScaledObject %s: %v", so.Name, err)
	}
	if err := keda.CheckReplicaCountBoundsAreValid(so); err != nil {
		t.Errorf("ScaledObject %s: %v", so.Name, err)
	}
	want := map[string]map[string]string{
		"payments-worker":      {"type": "rabbitmq", "queueName": cfg.PaymentsQueue()},
		"notifications-worker": {"type": "rabbitmq", "queueName": cfg.NotificationsQueue()},
		"analytics-worker":     {"type": "kafka", "topic": cfg.EventsTopic(), "consumerGroup": cfg.AnalyticsGroup()},
	}[so.Spec.ScaleTargetRef.Name]
	if want == nil {
		t.Errorf("ScaledObject %s scales %s, which consumes no queue or topic", so.Name, so.Spec.ScaleTargetRef.Name)
		return
	}
	found := false
	for _, tr := range so.Spec.Triggers {
		if tr.Type != want["type"] {
			continue
		}
		found = true
		for k, v := range want {
			if k != "type" && tr.Metadata[k] != v {
				t.Errorf("ScaledObject %s: %s trigger's %s = %q, want %q", so.Name, tr.Type, k, tr.Metadata[k], v)
			}
		}
		switch tr.Type {
		case "rabbitmq":
			// KEDA connects with the workers' own RABBITMQ_URL, from the Secret.
			if !authenticatesWith(objs, tr.AuthenticationRef, "host", "RABBITMQ_URL") {
				t.Errorf("ScaledObject %s: the rabbitmq trigger's host is not RABBITMQ_URL through a TriggerAuthentication here", so.Name)
			}
		case "kafka":
			// KEDA reads the brokers from the worker's own environment.
			if env := tr.Metadata["bootstrapServersFromEnv"]; env != "KAFKA_BROKERS" {
				t.Errorf("ScaledObject %s: the kafka trigger's bootstrapServersFromEnv = %q, want KAFKA_BROKERS", so.Name, env)
			}
		}
	}
	if !found {
		t.Errorf("ScaledObject %s has no %s trigger", so.Name, want["type"])
	}
	if want["type"] == "kafka" && so.GetHPAMaxReplicas() > app.EventsTopicPartitions {
		t.Errorf("ScaledObject %s: up to %d replicas, but the topic has %d partitions: the rest would sit idle",
			so.Name, so.GetHPAMaxReplicas(), app.EventsTopicPartitions)
	}
}

// authenticatesWith reports whether ref names a TriggerAuthentication that sets parameter from
// the Secret's key.
func authenticatesWith(objs []object, ref *keda.AuthenticationRef, parameter, key string) bool {
	if ref == nil {
		return false
	}
	for _, ta := range each[keda.TriggerAuthentication](objs) {
		if ta.Name != ref.Name {
			continue
		}
		for _, s := range ta.Spec.SecretTargetRef {
			if s.Parameter == parameter && s.Key == key {
				return true
			}
		}
	}
	return false
}

func hasObject[T any](objs []object, name string) bool {
	for _, o := range objs {
		if _, ok := o.value.(*T); ok && o.name == name {
			return true
		}
	}
	return false
}

func hasBudget(objs []object, d *appsv1.Deployment) bool {
	for _, pdb := range each[policyv1.PodDisruptionBudget](objs) {
		sel, err := metav1LabelSelector(pdb)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			return true
		}
	}
	return false
}

// checkSettings asserts that every variable a pod's containers are given is a setting, and
// that every ConfigMap and Secret it takes variables from is named.
func checkSettings(t *testing.T, name string, spec corev1.PodSpec, settings map[string]setting) {
	t.Helper()
	for _, c := range spec.Containers {
		for _, e := range c.Env {
			if _, ok := settings[e.Name]; !ok && !goRuntime[e.Name] {
				t.Errorf("%s: variable %s is not in the README's settings table", name, e.Name)
			}
		}
	}
}

// The Ingress sends to the API's Service, and holds a websocket open at least as long as an
// access token lives (a subscription ends when its token does).
func checkIngress(t *testing.T, objs []object, cfg app.Config) {
	t.Helper()
	ingresses := each[networkingv1.Ingress](objs)
	if len(ingresses) == 0 {
		t.Error("no Ingress")
	}
	tokenTTL := 15 * 60 // ACCESS_TOKEN_TTL's default, in seconds
	for _, ing := range ingresses {
		for _, key := range []string{"proxy-read-timeout", "proxy-send-timeout"} {
			v, err := strconv.Atoi(ing.Annotations["nginx.ingress.kubernetes.io/"+key])
			if err != nil || v < tokenTTL {
				t.Errorf("Ingress %s: %s = %q, want at least %d s for websockets", ing.Name, key, ing.Annotations["nginx.ingress.kubernetes.io/"+key], tokenTTL)
			}
		}
		for _, rule := range ing.Spec.Rules {
			for _, p := range rule.HTTP.Paths {
				if p.Backend.Service == nil || !hasObject[corev1.Service](objs, p.Backend.Service.Name) {
					t.Errorf("Ingress %s: path %s goes to no Service here", ing.Name, p.Path)
				}
			}
		}
	}
}

// Some NetworkPolicy denies by default every pod of the project, and the API takes traffic
// from somewhere.
func checkNetworkPolicies(t *testing.T, objs []object, deployments map[string]*appsv1.Deployment) {
	t.Helper()
	var denyAll, apiIngress bool
	for _, np := range each[networkingv1.NetworkPolicy](objs) {
		sel, err := metav1LabelSelectorOf(&np.Spec.PodSelector)
		if err != nil {
			t.Errorf("NetworkPolicy %s: %v", np.Name, err)
			continue
		}
		selectsAll := true
		for _, d := range deployments {
			if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				selectsAll = false
			}
		}
		if selectsAll && len(np.Spec.Ingress) == 0 && len(np.Spec.Egress) == 0 && len(np.Spec.PolicyTypes) == 2 {
			denyAll = true
		}
		if api := deployments["api"]; api != nil && sel.Matches(labels.Set(api.Spec.Template.Labels)) {
			for _, rule := range np.Spec.Ingress {
				for _, p := range rule.Ports {
					if p.Port != nil && p.Port.StrVal == "http" {
						apiIngress = true
					}
				}
			}
		}
	}
	if !denyAll {
		t.Error("no NetworkPolicy denies ingress and egress to every Deployment by default")
	}
	if !apiIngress {
		t.Error("no NetworkPolicy lets traffic reach the API's http port")
	}
}
