package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.Write([]byte("ok"))
		case "/slow":
			time.Sleep(time.Second)
		default:
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		path   string
		wantOK bool
	}{
		{"/readyz", true},
		{"/down", false},
		{"/slow", false},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := check(ctx, srv.URL+tc.path)
		cancel()
		if got := err == nil; got != tc.wantOK {
			t.Errorf("check(%s) = %v, want ok %v", tc.path, err, tc.wantOK)
		}
	}
	if err := check(context.Background(), "http://127.0.0.1:1/readyz"); err == nil {
		t.Error("check of a closed port = nil, want an error")
	}
}
