package deploy

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	keda "github.com/kedacore/keda/v2/apis/keda/v1alpha1"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/workers/pruner"
)

// operatorObjects returns the unstructured objects of one kind.
func operatorObjects(objs []object, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range each[unstructured.Unstructured](objs) {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

// intField reads a number an operator's spec holds as a number or a string.
func intField(t *testing.T, u *unstructured.Unstructured, path ...string) int {
	t.Helper()
	v, _, _ := unstructured.NestedFieldNoCopy(u.Object, path...)
	switch n := v.(type) {
	case int64:
		return int(n)
	case float64:
		return int(n)
	case string:
		i, err := strconv.Atoi(n)
		if err == nil {
			return i
		}
	}
	t.Fatalf("%s %s: %s = %v, want a number", u.GetKind(), u.GetName(), strings.Join(path, "."), v)
	return 0
}

// The data tier fits the application: one PostgreSQL cluster and pooler per shard that the
// Secret's example names, a connection budget that holds at every autoscaler's maximum, the
// order-events topic as the relay declares it, and the brokers where the ConfigMap says.
func TestDataTier(t *testing.T) {
	t.Parallel()
	data := build(t, "k8s/data")
	application := build(t, "k8s")
	cfg := app.Config{}

	// Each shard: a Cluster and a transaction-mode Pooler in front of it.
	clusters := map[string]*unstructured.Unstructured{}
	for _, c := range operatorObjects(data, "Cluster") {
		clusters[c.GetName()] = c
	}
	poolers := operatorObjects(data, "Pooler")
	if len(clusters) == 0 || len(poolers) != len(clusters) {
		t.Fatalf("%d PostgreSQL clusters and %d poolers, want one pooler per cluster", len(clusters), len(poolers))
	}

	// The connection budget, per shard: every process's pool at every autoscaler's maximum
	// fits one pooler instance's clients, and the poolers' server connections fit the
	// server's max_connections, less a reserve for the operator, replication and superusers.
	clientConns, detail := applicationConnections(t, application)
	const reserved = 10
	for _, p := range poolers {
		name, _, _ := unstructured.NestedString(p.Object, "spec", "cluster", "name")
		c := clusters[name]
		if c == nil {
			t.Errorf("Pooler %s fronts %q, which is no Cluster here", p.GetName(), name)
			continue
		}
		if mode, _, _ := unstructured.NestedString(p.Object, "spec", "pgbouncer", "poolMode"); mode != "transaction" {
			t.Errorf("Pooler %s: poolMode %q, want transaction: a session pooler holds a server connection per client", p.GetName(), mode)
		}
		maxClients := intField(t, p, "spec", "pgbouncer", "parameters", "max_client_conn")
		if clientConns > maxClients {
			t.Errorf("Pooler %s: the application may open %d connections (%s), more than max_client_conn %d",
				p.GetName(), clientConns, detail, maxClients)
		}
		server := intField(t, p, "spec", "instances") * intField(t, p, "spec", "pgbouncer", "parameters", "default_pool_size")
		if maxConns := intField(t, c, "spec", "postgresql", "parameters", "max_connections"); server > maxConns-reserved {
			t.Errorf("Pooler %s opens up to %d server connections, more than Cluster %s's max_connections %d less %d",
				p.GetName(), server, name, maxConns, reserved)
		}
	}

	// The Secret's example names each shard's pooler, in shard order, and each primary for
	// the migration.
	secret := readSecretExample(t)
	for key, service := range map[string]string{"DATABASE_SHARDS": "shard-%d-pooler-rw", "DATABASE_SHARDS_DIRECT": "shard-%d-rw"} {
		urls := strings.Split(secret.StringData[key], ",")
		if len(urls) != len(clusters) {
			t.Errorf("secret.example.yaml: %s has %d URLs, want one per cluster (%d)", key, len(urls), len(clusters))
			continue
		}
		for i, raw := range urls {
			u, err := url.Parse(raw)
			if err != nil {
				t.Errorf("secret.example.yaml: %s URL %d: %v", key, i, err)
				continue
			}
			if want := fmt.Sprintf(service, i); u.Hostname() != want {
				t.Errorf("secret.example.yaml: %s URL %d goes to %s, want %s", key, i, u.Hostname(), want)
			}
		}
	}

	// The order-events topic as the relay creates it, kept no longer than analytics
	// remembers what it counted.
	var topic *unstructured.Unstructured
	for _, kt := range operatorObjects(data, "KafkaTopic") {
		if kt.GetName() == cfg.EventsTopic() {
			topic = kt
		}
	}
	if topic == nil {
		t.Fatalf("no KafkaTopic %s", cfg.EventsTopic())
	}
	if got := intField(t, topic, "spec", "partitions"); got != app.EventsTopicPartitions {
		t.Errorf("KafkaTopic %s: %d partitions, want app.EventsTopicPartitions (%d)", topic.GetName(), got, app.EventsTopicPartitions)
	}
	retention := time.Duration(intField(t, topic, "spec", "config", "retention.ms")) * time.Millisecond
	if retention >= pruner.DefaultDedupRetention {
		t.Errorf("KafkaTopic %s keeps records %v, not less than analytics' dedup records (%v): a replay could count twice",
			topic.GetName(), retention, pruner.DefaultDedupRetention)
	}

	// KAFKA_BROKERS names the Strimzi cluster's bootstrap Service.
	kafkas := operatorObjects(data, "Kafka")
	if len(kafkas) != 1 {
		t.Fatalf("%d Kafka clusters, want 1", len(kafkas))
	}
	bootstrap := kafkas[0].GetName() + "-kafka-bootstrap:9092"
	for _, cm := range each[corev1.ConfigMap](application) {
		if got := cm.Data["KAFKA_BROKERS"]; got != bootstrap {
			t.Errorf("ConfigMap %s: KAFKA_BROKERS = %q, want Strimzi's bootstrap %q", cm.Name, got, bootstrap)
		}
	}

	// The flashsale ServiceMonitor finds the application's ops Service.
	var scraped bool
	for _, sm := range operatorObjects(data, "ServiceMonitor") {
		if sm.GetName() != "flashsale" {
			continue
		}
		want, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
		for _, s := range each[corev1.Service](application) {
			if matches(want, s.Labels) && hasPort(s, "ops") {
				scraped = true
			}
		}
	}
	if !scraped {
		t.Error("no ServiceMonitor flashsale selecting a Service of the application with an ops port")
	}
}

// applicationConnections adds up, over the application's Deployments, the most replicas its
// autoscaler allows times the pool size of each (DATABASE_POOL_SIZE, default 16).
func applicationConnections(t *testing.T, objs []object) (int, string) {
	t.Helper()
	most := map[string]int{}
	for _, h := range each[autoscalingv2.HorizontalPodAutoscaler](objs) {
		most[h.Spec.ScaleTargetRef.Name] = int(h.Spec.MaxReplicas)
	}
	for _, so := range each[keda.ScaledObject](objs) {
		most[so.Spec.ScaleTargetRef.Name] = int(so.GetHPAMaxReplicas())
	}
	total := 0
	var parts []string
	for _, d := range each[appsv1.Deployment](objs) {
		pool := 16
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			if e.Name == "DATABASE_POOL_SIZE" {
				pool, _ = strconv.Atoi(e.Value)
			}
		}
		if most[d.Name] == 0 {
			t.Errorf("Deployment %s has no autoscaler to bound its replicas", d.Name)
		}
		total += most[d.Name] * pool
		parts = append(parts, fmt.Sprintf("%s %dx%d", d.Name, most[d.Name], pool))
	}
	return total, strings.Join(parts, " + ")
}

func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func hasPort(s *corev1.Service, name string) bool {
	for _, p := range s.Spec.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

// readSecretExample decodes k8s/secret.example.yaml strictly, and checks that each of its
// keys is a setting or what the manifests read by name.
func readSecretExample(t *testing.T) *corev1.Secret {
	t.Helper()
	b, err := os.ReadFile("k8s/secret.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var s corev1.Secret
	if err := yaml.UnmarshalStrict(b, &s); err != nil {
		t.Fatalf("secret.example.yaml does not decode strictly: %v", err)
	}
	settings := readSettings(t)
	for key := range s.StringData {
		if _, ok := settings[key]; !ok && key != "DATABASE_SHARDS_DIRECT" {
			t.Errorf("secret.example.yaml holds %s, which the README's settings table does not list", key)
		}
	}
	return &s
}
