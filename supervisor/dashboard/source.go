package dashboard

import (
	"context"
	"time"
)

// Source is what the dashboard shows and does: the daemon, or a fake in
// tests and benchmarks. Every method may be called from many requests
// at once.
type Source interface {
	// Apps lists every app, by name.
	Apps(ctx context.Context) ([]AppSummary, error)
	// App is one app's page, without its metrics; ErrNoApp (wrapped)
	// when there is none.
	App(ctx context.Context, name string) (*AppView, error)
	// ConfigVars are the app's config vars, values and all: shown only
	// when asked.
	ConfigVars(ctx context.Context, app string) (map[string]string, error)
	// Metrics are the app's series over r, ending now.
	Metrics(ctx context.Context, app string, r Range) (*Metrics, error)

	// The actions, each recorded as the CLI records it, by user.
	Restart(ctx context.Context, app, dyno, user string) error
	Scale(ctx context.Context, app, typ string, quantity int, size, user string) error
	Rollback(ctx context.Context, app string, version int, user string) (int, error)
	Maintenance(ctx context.Context, app string, on bool, user string) error

	// Watch calls changed with what changed in app (dynos, a release,
	// new metrics) until ctx ends; it returns at once when app does not
	// exist. changed must not block.
	Watch(ctx context.Context, app string, changed func(Change)) error
	// Logs sends the app's last n log lines, then, until ctx ends or
	// send returns false, each line as it comes. Each line is Logplex's
	// "TIME SOURCE[DYNO]: TEXT". While no line comes, send is called
	// with none at least every 25 s, so that the stream can say it is
	// alive.
	Logs(ctx context.Context, app string, n int, send func(lines [][]byte) bool) error
	// User is who the actions are recorded as: the account.
	User(ctx context.Context) (string, error)
}

// Change is what a live page refreshes.
type Change uint8

const (
	// ChangeDynos: a dyno changed state, or the formation changed.
	ChangeDynos Change = 1 << iota
	// ChangeRelease: a release, a scale or maintenance was recorded:
	// the releases, the formation and the markers.
	ChangeRelease
	// ChangeMetrics: a new sample was stored.
	ChangeMetrics
)

// AppSummary is one row of the apps page.
type AppSummary struct {
	Name      string
	State     string // AppState's words
	Release   int    // the current release's version; 0 when none
	Formation string // "web=2:basic worker=1:basic"
	URL       string // the web URL; "" without web dynos
	LastEvent Event
}

// App states, in the words the page shows.
const (
	StateRunning     = "running"
	StateCrashed     = "crashed"
	StateMaintenance = "maintenance"
	StateSleeping    = "sleeping"
	StateIdle        = "no dynos"
	StateNoRelease   = "not deployed"
)

// Event is something that happened to an app: a marker on its charts.
type Event struct {
	Time time.Time
	Kind string // "release", "scale", "maintenance", "restart", "crash", "r14", "r15"
	Text string // "v12 Set FOO config vars by alice"
}

// AppView is an app's page.
type AppView struct {
	Name        string
	State       string
	URL         string
	Maintenance bool
	Release     int // current; 0 when none
	Formation   []FormationRow
	Dynos       []DynoRow
	ConfigNames []string
	Releases    []ReleaseRow // newest first
	Addons      []AddonRow
	Domains     []string
	Sizes       []string // the sizes a scale may pick
}

// FormationRow is one process type's scale.
type FormationRow struct {
	Type     string
	Quantity int
	Size     string
	Command  string
}

// DynoRow is one running dyno.
type DynoRow struct {
	Name   string
	Type   string
	Size   string
	State  string // up, starting, crashed, down, idle
	Since  time.Time
	Memory int64   // bytes now; 0 when not measured
	Quota  int64   // bytes
	CPU    float64 // share of one CPU over the last sample, 0..n
	OneOff bool
}

// ReleaseRow is one release.
type ReleaseRow struct {
	Version     int
	Description string
	User        string
	Time        time.Time
	Status      string
	Current     bool
}

// AddonRow is one attached add-on.
type AddonRow struct {
	Name    string // the attachment's: DATABASE
	Addon   string
	Service string
	Plan    string
}

// Range is how far back the charts go.
type Range struct {
	Name string        // "1h", "24h", "7d"
	Span time.Duration // an hour, a day, a week
	Step time.Duration // the stored archive's: 10 s, 1 min, 10 min
}

// Ranges are the charts' three ranges.
func Ranges() []Range {
	return []Range{
		{"1h", time.Hour, 10 * time.Second},
		{"24h", 24 * time.Hour, time.Minute},
		{"7d", 7 * 24 * time.Hour, 10 * time.Minute},
	}
}

// Metrics are an app's series over a range.
type Metrics struct {
	From, To time.Time
	Step     time.Duration
	Types    []TypeMetrics
	// Router figures, by period: requests a minute, response times
	// and responses by class ("2xx" .. "5xx") and by H code, a minute.
	Requests      []Point
	P50, P95, P99 []Point
	Classes       []Series
	Codes         []Series
	Events        []Event
}

// TypeMetrics are one process type's dynos together.
type TypeMetrics struct {
	Type      string
	Memory    []Point // mean over the type's dynos, bytes
	MemoryMax []Point // the largest dyno's
	Quota     int64   // bytes, of the type's size
	// Dynos are each dyno's memory, when the type has few enough for
	// a line each to be read; nil otherwise.
	Dynos  []Series
	CPU    []Point // mean share of a CPU, 0..1 a CPU
	CPUMax []Point
}

// Point is one period's value; V is NaN where there is none.
type Point struct {
	T time.Time
	V float64
}

// Series is a named list of points.
type Series struct {
	Name   string
	Points []Point
}
