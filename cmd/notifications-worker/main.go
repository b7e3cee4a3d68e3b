// Command notifications-worker tells buyers what happened to their orders (log sink, or a
// signed webhook when NOTIFY_WEBHOOK_URL is set). Each event notifies once.
package main

import (
	"github.com/flashsale/flashsale/app"
)

func main() {
	app.WorkerMain("notifications", app.RunNotifications)
}
