package notifications

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/flashsale/flashsale"
)

// LogSink "delivers" by logging: the default on a developer's machine.
type LogSink struct{ Log *slog.Logger }

// Deliver logs the notification.
func (s LogSink) Deliver(ctx context.Context, n *flashsale.Notification) error {
	s.Log.InfoContext(ctx, "notification", "user", n.UserID.String(), "order", n.OrderID.String(), "subject", n.Subject)
	return nil
}

// WebhookSink POSTs each notification as JSON, signed with HMAC-SHA256 over the body in the
// X-Flashsale-Signature header ("sha256=<hex>") so the receiver can tell it came from us.
// It retries a few times with a growing delay; after that the error goes back to the queue's
// retry machinery.
type WebhookSink struct {
	URL    string
	Secret []byte
	Client *http.Client
	Tries  int // default 3
}

// Deliver posts the notification.
func (s WebhookSink) Deliver(ctx context.Context, n *flashsale.Notification) error {
	body, err := json.Marshal(map[string]any{
		"eventId": n.EventID, "userId": n.UserID.String(), "orderId": n.OrderID.String(),
		"kind": n.Kind, "subject": n.Subject, "body": n.Body,
	})
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, s.Secret)
	mac.Write(body)
	signature := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	client := s.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	tries := max(s.Tries, 1)
	if s.Tries == 0 {
		tries = 3
	}
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err = s.post(ctx, client, body, signature, n.EventID)
		if err == nil || attempt >= tries {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
			delay *= 4
		}
	}
}

func (s WebhookSink) post(ctx context.Context, client *http.Client, body []byte, signature, eventID string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Flashsale-Signature", signature)
	req.Header.Set("X-Flashsale-Event-Id", eventID)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
