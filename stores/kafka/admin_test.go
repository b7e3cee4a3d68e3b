package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/kafka"
)

func TestPing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		brokers []string
		wantErr bool
	}{
		{"live broker", context.Background(), e.brokers, false},
		{"one dead address before a live one", context.Background(), []string{dead, e.brokers[0]}, false},
		{"dead address", context.Background(), []string{dead}, true},
		{"no addresses", context.Background(), nil, true},
		{"cancelled context", cancelled, e.brokers, true},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(tt.ctx, 10*time.Second)
		err := kafka.Ping(ctx, tt.brokers)
		cancel()
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: Ping = %v, want error: %v", tt.name, err, tt.wantErr)
		}
	}
}

func TestEmbeddedClose(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := kafka.StartEmbedded(ctx, testLog(t))
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	if err := kafka.Ping(ctx, b.Brokers()); err != nil {
		t.Fatalf("Ping before Close: %v", err)
	}
	b.Close()
	b.Close() // a second Close does nothing
	if err := kafka.Ping(ctx, b.Brokers()); err == nil {
		t.Errorf("Ping after Close = nil, want an error")
	}
}

func TestCreateTopicIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topic := testenv.Name()
	for i := range 2 {
		if err := kafka.CreateTopic(ctx, e.brokers, topic, 3); err != nil {
			t.Fatalf("CreateTopic call %d: %v", i+1, err)
		}
	}
	if got, want := e.partitions(topic), 3; got != want {
		t.Errorf("partitions = %d, want %d", got, want)
	}
	if err := kafka.CreateTopic(ctx, e.brokers, testenv.Name(), 0); err == nil {
		t.Errorf("CreateTopic with 0 partitions = nil, want an error")
	}
}

func TestCreateTopicGrowsATopicWithFewerPartitions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topic := testenv.Name()
	// As a broker's auto-creation would leave it, with its own default count.
	if err := kafka.CreateTopic(ctx, e.brokers, topic, 2); err != nil {
		t.Fatalf("CreateTopic with 2 partitions: %v", err)
	}
	if err := kafka.CreateTopic(ctx, e.brokers, topic, 5); err != nil {
		t.Fatalf("CreateTopic with 5 partitions: %v", err)
	}
	if got, want := e.partitions(topic), 5; got != want {
		t.Errorf("partitions after asking for 5 = %d, want %d", got, want)
	}
	// Kafka never removes partitions: asking for fewer keeps them.
	if err := kafka.CreateTopic(ctx, e.brokers, topic, 3); err != nil {
		t.Fatalf("CreateTopic with 3 partitions: %v", err)
	}
	if got, want := e.partitions(topic), 5; got != want {
		t.Errorf("partitions after asking for 3 = %d, want %d", got, want)
	}
}

func TestProducerSendAfterClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(1)
	p := kafka.NewProducer(e.brokers, topic, e.log)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Send(ctx, kafka.Message{Value: []byte("v")}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Send(ctx, kafka.Message{Value: []byte("v")}); err == nil {
		t.Errorf("Send after Close = nil, want an error")
	}
}
