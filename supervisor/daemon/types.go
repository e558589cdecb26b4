package daemon

import (
	"fmt"
	"net/http"
	"time"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor"
)

// Dyno is the Platform API's dyno, as the daemon answers GET and POST
// /apps/{app}/dynos and as dyno's CLI reads it. Pid, MemoryBytes and
// CPUSeconds are dyno's own, and Port, the PORT its process was given
// (the router's way in; an operator's for a look behind the router);
// the Heroku CLI ignores them.
type Dyno struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	Command   string    `json:"command"`
	State     string    `json:"state"`
	Size      string    `json:"size"`
	UpdatedAt time.Time `json:"updated_at"`
	App       AppRef    `json:"app"`

	Pid         int     `json:"pid,omitempty"`
	Port        int     `json:"port,omitempty"`
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	CPUSeconds  float64 `json:"cpu_seconds,omitempty"`
	// RuntimeMetrics are the figures of the dyno's log-runtime-metrics
	// lines, from its last sample (every 5 s), whether the app logs
	// them or not; absent without cgroup limits.
	RuntimeMetrics *supervisor.RuntimeMetrics `json:"runtime_metrics,omitempty"`
}

// AppRef names the app a resource belongs to, as the Platform API
// nests it: {"name": "demo"}.
type AppRef struct {
	Name string `json:"name"`
}

// NewDyno is the API's view of a dyno the supervisor reports. The time
// is whole seconds in UTC, as Heroku's updated_at is.
func NewDyno(s supervisor.DynoStatus, appName string) Dyno {
	d := Dyno{
		ID: s.Name, Name: s.Name, Type: s.Type, Command: s.Command, State: string(s.State),
		Size: app.SizeName(s.Size), UpdatedAt: s.Since.UTC().Truncate(time.Second),
		App: AppRef{Name: appName}, Pid: s.Pid, Port: s.Port,
	}
	if s.Idle {
		d.State = "idle" // asleep, as Heroku's ps shows an eco dyno
	}
	if s.Memory > 0 {
		d.MemoryBytes, d.CPUSeconds = s.Memory, s.CPU.Seconds()
	}
	d.RuntimeMetrics = s.Metrics
	return d
}

// APIError is the Platform API's error: the body {"id", "message"} the
// daemon answers with, and, on the client's side, the HTTP status it
// came with, so that callers can tell "not_found" from "unavailable"
// with errors.As rather than by reading the message.
type APIError struct {
	Status  int    `json:"-"`  // the HTTP status, 404
	ID      string `json:"id"` // "not_found", "invalid_params", "unavailable"
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	if e.ID != "" {
		return fmt.Sprintf("%s (%d %s)", e.ID, e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
}
