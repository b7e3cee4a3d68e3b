package graph

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
)

// livePage is the live stock page: static HTML whose script does everything over /query.
//
//go:embed live/index.html
var livePage []byte

// LivePage serves the live stock page of a flash sale, GET /live?sale=<id> (without a sale it
// lists the sales). The page is the same for everyone; its script reads the sale, signs the
// visitor in and buys over POST /query, and follows the stock and the visitor's orders over
// the /query websocket.
func LivePage() http.Handler {
	// The policy allows the page's own inline <style> and <script> by hash, and connections to
	// this origin (ws: and wss: included) only: nothing injected into the page could run.
	// Product pictures are absolute http(s) URLs (flashsale.Product.Validate), on any host;
	// data: is the empty favicon, which spares the browser a request for /favicon.ico.
	csp := strings.Join([]string{
		"default-src 'none'",
		"script-src " + inlineHashes("script"),
		"style-src " + inlineHashes("style"),
		"img-src https: http: data:",
		"connect-src 'self'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		w.Write(livePage)
	})
}

// inlineHashes returns the CSP source expressions of the page's inline elements of a tag,
// whose opening and closing tags start a line.
func inlineHashes(tag string) string {
	re := regexp.MustCompile(`(?ms)^<` + tag + `>(.*?)^</` + tag + `>`)
	var sources []string
	for _, m := range re.FindAllSubmatch(livePage, -1) {
		sum := sha256.Sum256(m[1])
		sources = append(sources, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	if len(sources) == 0 {
		return "'none'"
	}
	return strings.Join(sources, " ")
}
