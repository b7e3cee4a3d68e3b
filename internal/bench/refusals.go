package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"time"
)

// RefusalsResult is what refusing costs the API: the CPU time this process spends per
// request for a RATE_LIMITED refusal and for each abuse probe (AbuseProbes), beside the floor
// ({ __typename }) measured the same way in the same run. Requests go to the API's handler
// with no network, one at a time, each probe from an address of its own so that only the
// limits under test refuse it.
type RefusalsResult struct {
	FloorCPUUs       float64            `json:"floor_cpu_us"`
	RateLimitedCPUUs float64            `json:"rate_limited_cpu_us"`
	ProbesCPUUs      map[string]float64 `json:"probes_cpu_us"`
	// Worst is the probe that cost the most.
	Worst string `json:"worst"`
}

// refusalRequests is how many requests each figure is the mean of; the probes, larger
// documents, take fewer.
const refusalRequests, probeRequests = 3000, 300

func runRefusals(ctx context.Context, h http.Handler, progress io.Writer) (*RefusalsResult, error) {
	floor := []byte(`{"query":"{ __typename }"}`)
	var addr int
	fresh := func() string { addr++; return fmt.Sprintf("10.%d.%d.%d:1234", 200+addr>>16&31, addr>>8&255, addr&255) }
	send := func(body []byte, from string) (int, string) {
		req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = from
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	perRequest := func(n int, each func() error) (float64, error) {
		start, ok := processCPU()
		if !ok {
			return 0, fmt.Errorf("this system does not report a process's CPU time")
		}
		for range n {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			if err := each(); err != nil {
				return 0, err
			}
		}
		end, _ := processCPU()
		return float64(end-start) / float64(n) / float64(time.Microsecond), nil
	}
	r := &RefusalsResult{ProbesCPUUs: map[string]float64{}}
	var err error
	if r.FloorCPUUs, err = perRequest(refusalRequests, func() error {
		if code, body := send(floor, fresh()); code != http.StatusOK || !strings.Contains(body, `"Query"`) {
			return fmt.Errorf("the floor answered %d %.200s", code, body)
		}
		return nil
	}); err != nil {
		return nil, err
	}

	// One address spends its budget, then every request of it is refused.
	spent := fresh()
	for i := 0; ; i++ {
		if code, _ := send(floor, spent); code == http.StatusTooManyRequests {
			break
		} else if i > 100_000 {
			return nil, fmt.Errorf("no request of one address was refused in %d; are the rate limits off?", i)
		}
	}
	// The budget refills while they are sent (RATE_LIMIT_REQUESTS' rate, a request every
	// 50 ms by default), so a few may be served; more than 1% would be the limit failing.
	served := 0
	if r.RateLimitedCPUUs, err = perRequest(refusalRequests, func() error {
		code, body := send(floor, spent)
		switch {
		case code == http.StatusOK && served < refusalRequests/100:
			served++
		case code != http.StatusTooManyRequests || !strings.Contains(body, "RATE_LIMITED"):
			return fmt.Errorf("a request over the budget answered %d %.200s (after %d served as the budget refilled)", code, body, served)
		}
		return nil
	}); err != nil {
		return nil, err
	}

	for _, p := range AbuseProbes() {
		body := p.Body()
		cpu, err := perRequest(probeRequests, func() error {
			code, answer := send(body, fresh())
			var out struct {
				Errors []struct {
					Extensions struct{ Code string } `json:"extensions"`
				} `json:"errors"`
			}
			json.Unmarshal([]byte(answer), &out)
			if len(out.Errors) == 0 || !slices.Contains([]string{"COMPLEXITY_LIMIT_EXCEEDED", "BAD_USER_INPUT"}, out.Errors[0].Extensions.Code) {
				return fmt.Errorf("probe %s answered %d %.200s", p.Name, code, answer)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		r.ProbesCPUUs[p.Name] = cpu
		if r.Worst == "" || cpu > r.ProbesCPUUs[r.Worst] {
			r.Worst = p.Name
		}
	}
	fmt.Fprintf(progress, "refusals: floor %.1f µs, RATE_LIMITED %.1f µs, worst probe %s %.1f µs of CPU a request\n",
		r.FloorCPUUs, r.RateLimitedCPUUs, r.Worst, r.ProbesCPUUs[r.Worst])
	return r, nil
}
