package graph

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Before Begin a replica is ready and keeps connections alive; after it, /readyz's check
// fails and every answer asks the client to close its connection.
func TestDrainFailsReadinessAndClosesConnectionsAfterBegin(t *testing.T) {
	t.Parallel()
	d := NewDrain()
	h := d.Serve(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
	answer := func() string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/query", nil))
		return rec.Header().Get("Connection")
	}
	if err := d.Check(context.Background()); err != nil {
		t.Errorf("Check before Begin = %v, want nil", err)
	}
	if got := answer(); got != "" {
		t.Errorf("Connection before Begin = %q, want none", got)
	}
	d.Begin()
	if err := d.Check(context.Background()); err == nil || !fatal(err) {
		t.Errorf("Check after Begin = %v, want an error that makes the replica unready", err)
	}
	if got := answer(); got != "close" {
		t.Errorf("Connection after Begin = %q, want close", got)
	}
}

// CloseSockets ends every registered socket's context, those registered afterwards at once,
// and returns once their handlers have.
func TestCloseSocketsEndsEverySocketAndWaitsForIt(t *testing.T) {
	t.Parallel()
	d := NewDrain()
	ctx, done := d.socket(context.Background())
	returned := make(chan struct{})
	go func() {
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // the handler writes its close frame
		close(returned)                   // before done, which CloseSockets waits for
		done()
	}()
	if d.closing() {
		t.Fatal("closing before CloseSockets")
	}
	wait, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.CloseSockets(wait); err != nil {
		t.Fatalf("CloseSockets: %v", err)
	}
	select {
	case <-returned:
	default:
		t.Error("CloseSockets returned before the socket's handler did")
	}
	if !d.closing() || !d.Draining() {
		t.Errorf("closing %v, draining %v after CloseSockets; want both", d.closing(), d.Draining())
	}
	late, lateDone := d.socket(context.Background())
	defer lateDone()
	select {
	case <-late.Done():
	case <-time.After(time.Second):
		t.Error("a socket opened after CloseSockets stayed open")
	}
}
