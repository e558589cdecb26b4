package attached

import (
	"fmt"
	"time"

	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/logstore"
)

// A Run is an attached one-off as the rest of the platform sees it: an
// entry among the app's dynos while it runs, and Heroku's state lines
// in the app's logs (its output stays in the terminal, as heroku run's
// does):
//
//	app[api]: Starting process with command `bash` by user ann
//	heroku[run.1234]: Starting process with command `bash`
//	heroku[run.1234]: State changed from starting to up
//	heroku[run.1234]: Process exited with status 0
//	heroku[run.1234]: State changed from up to complete
type Run struct {
	reg     *Registration
	logsDir string
	name    string
	typ     string
	state   supervisor.State
}

// Begin registers st as starting in the app whose folder is appDir and
// logs its command to logsDir, for user.
func Begin(appDir, logsDir string, st supervisor.DynoStatus, user string) (*Run, error) {
	st.State, st.Since = supervisor.Starting, time.Now()
	reg, err := Register(Dir(appDir), st)
	if err != nil {
		return nil, err
	}
	r := &Run{reg: reg, logsDir: logsDir, name: st.Name, typ: st.Type, state: supervisor.Starting}
	now := time.Now()
	err = logstore.AppendLines(logsDir, "app", "api", now, fmt.Sprintf("Starting process with command `%s` by user %s", st.Command, user))
	if err == nil {
		err = logstore.AppendLines(logsDir, "heroku", st.Name, now, fmt.Sprintf("Starting process with command `%s`", st.Command))
	}
	if err != nil {
		reg.Close()
		return nil, err
	}
	return r, nil
}

// Up records that the dyno's process runs.
func (r *Run) Up() error {
	r.state = supervisor.Up
	err := r.reg.SetState(supervisor.Up)
	if lerr := r.log("State changed from starting to up"); err == nil {
		err = lerr
	}
	return err
}

// Exited records the dyno's end with status and removes its entry.
func (r *Run) Exited(status int) error {
	err := r.log(fmt.Sprintf("Process exited with status %d", status), fmt.Sprintf("State changed from %s to %s", r.state, supervisor.Complete))
	r.state = supervisor.Complete
	if cerr := r.reg.Close(); err == nil {
		err = cerr
	}
	return err
}

// Failed records a dyno that could not start and removes its entry.
func (r *Run) Failed() error {
	err := r.log(fmt.Sprintf("State changed from %s to %s", r.state, supervisor.Crashed))
	r.state = supervisor.Crashed
	if cerr := r.reg.Close(); err == nil {
		err = cerr
	}
	return err
}

// Type is the process type ps shows for the run.
func (r *Run) Type() string { return r.typ }

// Log writes texts as the dyno's own lines (heroku[run.N]), as the state
// lines are: what happened to it besides them (the daemon's R13 when no
// client attached).
func (r *Run) Log(texts ...string) error { return r.log(texts...) }

// Close removes the entry if Exited or Failed did not.
func (r *Run) Close() error { return r.reg.Close() }

func (r *Run) log(texts ...string) error {
	return logstore.AppendLines(r.logsDir, "heroku", r.name, time.Now(), texts...)
}
