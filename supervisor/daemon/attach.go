package daemon

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/dyno-run/dyno/isolate"
	"github.com/dyno-run/dyno/slug"
	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/attached"
	"github.com/dyno-run/dyno/supervisor/release"
	"github.com/dyno-run/dyno/supervisor/rendezvous"
	"golang.org/x/sys/unix"
)

// heroku run through the daemon. POST /apps/{app}/dynos with "attach":
// true, over TCP, makes a one-off run.N and a rendezvous secret and
// answers with rendezvous://HOST:PORT/SECRET, HOST:PORT the request's
// own Host, so that a client through a tunnel gets the address it
// reached. The client brings the secret to the same port; the
// listener tells it from HTTP (tlsListener.handshake) and hands the
// connection to the dyno's attach.
//
// The dyno starts at attach, not at the POST: its first output then has
// a reader (a dyno started at the POST would write to no one until the
// client came, and a shell's prompt or an error could be lost or block),
// its terminal is made at the client's size before the command runs,
// and a client that never comes costs no process. From the POST ps
// lists run.N as starting and the logs have its command, as Heroku's
// do; "up" comes with the process. A secret no one brings within
// rendezvous.DefaultTTL (Daemon.attachTTL) is dropped and run.N with it, with Heroku's R13
// in the logs.
//
// Over the unix socket attach is refused, as it was: dyno run -a runs
// attached one-offs in the user's own terminal, with no socket between.

// attachGrace bounds the handshake: how long the client may take to
// acknowledge the handshake line.
const attachGrace = 10 * time.Second

// attachedDyno is a run.N of heroku run, from its POST to its end.
type attachedDyno struct {
	r          *appRun
	cfg        supervisor.DynoConfig
	tty        bool
	rows, cols uint16
	run        *attached.Run
	hold       io.Closer // the release's slug, held while the dyno may run

	mu      sync.Mutex
	secret  string        // until claimed or revoked
	dyno    *isolate.Dyno // once started
	done    bool          // ended, or stopped before it started
	stopped bool          // a stop sequence is under way
	killer  *time.Timer   // SIGKILL at the end of the stop's grace
}

// newAttached records a run.N of heroku run for req: listed by ps as
// starting, its command in the logs, the release's slug held. It starts
// when attach is called, or ends with expire.
func (r *appRun) newAttached(req DynoRequest, user string) (*attachedDyno, error) {
	r.mu.Lock()
	rel, o := r.rel, r.options()
	r.mu.Unlock()
	if rel == nil {
		return nil, release.NoCode(r.name)
	}
	size, err := release.Size(r.sizes, req.Size)
	if err != nil {
		return nil, err
	}
	typ := req.Type
	if typ == "" {
		typ = "run"
	}
	if !slug.ValidProcessType(typ) {
		return nil, fmt.Errorf("type %q: a process type is letters, digits, _ and -, like run or worker", typ)
	}
	hold, err := r.app.Home().Slugs().Acquire(rel.Slug)
	if err != nil {
		return nil, err
	}
	o.Env, o.BasePort = req.Env, r.d.allocPort()
	ad := &attachedDyno{r: r, tty: !req.ForceNoTTY, hold: hold}
	ad.rows, ad.cols = termSize(req.Env["LINES"]), termSize(req.Env["COLUMNS"])
	// run.N is drawn at random, as Heroku's are; a name another run
	// holds is drawn again.
	for range 5 {
		ad.cfg = release.OneOff(rel, req.Command, size, o)
		ad.run, err = attached.Begin(r.app.Dir, r.app.LogsDir(), supervisor.DynoStatus{
			Name: ad.cfg.Name, Type: typ, Command: req.Command, Size: size,
		}, user)
		if err == nil {
			break
		}
	}
	if err != nil {
		hold.Close()
		return nil, err
	}
	r.mu.Lock()
	if r.attached == nil {
		r.attached = map[string]*attachedDyno{}
	}
	r.attached[ad.cfg.Name] = ad
	r.mu.Unlock()
	r.attachedWG.Add(1)
	return ad, nil
}

// termSize reads COLUMNS or LINES; 0, the kernel's for a new PTY, when
// absent or not a size (the CLI sends 0 when it has no terminal).
func termSize(s string) uint16 {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0
	}
	return uint16(n)
}

// setSecret notes the secret that attaches ad, for a stop that comes
// before its client.
func (ad *attachedDyno) setSecret(s string) {
	ad.mu.Lock()
	ad.secret = s
	ad.mu.Unlock()
}

// expire ends a run.N whose client never came.
func (ad *attachedDyno) expire() {
	ad.run.Log("Error R13 (Attach error) -> Failed to attach to process: no client within " + inSeconds(ad.r.d.tcp.rdv.TTL()))
	ad.finish(ad.run.Failed)
}

// finish ends ad once: its last lines (end), its entry, its hold.
func (ad *attachedDyno) finish(end func() error) {
	ad.mu.Lock()
	if ad.done {
		ad.mu.Unlock()
		return
	}
	ad.done = true
	if ad.killer != nil {
		ad.killer.Stop()
	}
	ad.mu.Unlock()
	if err := end(); err != nil {
		ad.r.d.logf("%s: %s: %v", ad.r.name, ad.cfg.Name, err)
	}
	ad.run.Close()
	ad.hold.Close()
	r := ad.r
	r.mu.Lock()
	delete(r.attached, ad.cfg.Name)
	r.mu.Unlock()
	r.attachedWG.Done()
}

// attach starts the dyno and joins it to conn, the client's, until it
// exits; then conn is closed. It runs on the listener's goroutine for
// conn.
func (ad *attachedDyno) attach(conn net.Conn) {
	defer conn.Close()
	ad.mu.Lock()
	ad.secret = ""
	ad.mu.Unlock()
	d, stream, release, err := ad.start()
	if err != nil {
		// Said on the terminal as well as in the logs: the client's
		// handshake first, or it would drop the message.
		if rendezvous.Handshake(conn, attachGrace) == nil {
			fmt.Fprintf(conn, "dyno: %s could not start: %v\r\n", ad.cfg.Name, err)
		}
		ad.run.Log("Error starting process: " + err.Error())
		ad.finish(ad.run.Failed)
		return
	}
	defer release()
	if err := ad.run.Up(); err != nil {
		ad.r.d.logf("%s: %s: %v", ad.r.name, ad.cfg.Name, err)
	}
	if err := rendezvous.Handshake(conn, attachGrace); err != nil {
		ad.hangup()
	}
	rendezvous.Bridge(conn, stream)
	status, err := d.Wait()
	if err != nil {
		ad.run.Log("Error waiting for process: " + err.Error())
	}
	ad.finish(func() error { return ad.run.Exited(status) })
}

// start starts the dyno: on a PTY made inside it, at the client's
// size, or on pipes (force_no_tty). release lets go of what it holds
// once the dyno has exited.
func (ad *attachedDyno) start() (*isolate.Dyno, rendezvous.Stream, func(), error) {
	var stream rendezvous.Stream
	r := ad.r
	ad.mu.Lock()
	gone := ad.done || ad.stopped
	ad.mu.Unlock()
	if gone {
		return nil, stream, nil, errors.New("stopped before its client attached")
	}
	if r.d.spawner == nil {
		return nil, stream, nil, errors.New("this daemon runs no dynos")
	}
	spec, cleanup, err := attached.Spec(r.d.isolatedRunner(r.app, r.sizes, r.ids), ad.cfg)
	if err != nil {
		return nil, stream, nil, err
	}
	var files []*os.File // the parent's ends, closed at release
	var child []*os.File // the dyno's ends, closed once it has them
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			f.Close()
		}
	}
	if ad.tty {
		spec.TTY, spec.Rows, spec.Cols = true, ad.rows, ad.cols
	} else {
		inR, inW, err := os.Pipe()
		if err != nil {
			cleanup()
			return nil, stream, nil, fmt.Errorf("start %s: %w", ad.cfg.Name, err)
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			inR.Close()
			inW.Close()
			cleanup()
			return nil, stream, nil, fmt.Errorf("start %s: %w", ad.cfg.Name, err)
		}
		spec.Stdin, spec.Stdout, spec.Stderr = inR, outW, outW
		files, child = []*os.File{inW, outR}, []*os.File{inR, outW}
		stream = rendezvous.Stream{In: inW, Out: outR, CloseIn: inW.Close}
	}
	d, err := r.d.spawner.Start(spec)
	// Once the dyno has its ends, this process's copies would keep the
	// pipes open after it exits: output would never end.
	closeAll(child)
	if err != nil {
		closeAll(files)
		cleanup()
		return nil, stream, nil, err
	}
	if ad.tty {
		stream = rendezvous.Stream{In: d.PTY(), Out: d.PTY(), TTY: true}
		files = []*os.File{d.PTY()}
	}
	stream.Hangup = ad.hangup
	ad.mu.Lock()
	ad.dyno = d
	stopped := ad.stopped
	ad.mu.Unlock()
	if stopped {
		// ps:stop came while it started.
		d.Signal(unix.SIGTERM)
	}
	return d, stream, func() {
		closeAll(files)
		cleanup()
	}, nil
}

// hangup is the client gone: every process of the dyno gets SIGHUP, as
// a terminal's hangup gives its session (termios(3), "hang up"), and,
// should one outlive it, SIGKILL at the end of the stop's grace.
func (ad *attachedDyno) hangup() {
	ad.stop(unix.SIGHUP, "Client disconnected; stopping all processes with SIGHUP")
}

// stop begins a stop sequence with sig: SIGKILL at once, or sig now and
// SIGKILL when the daemon's stop timeout has passed. A dyno whose client
// has not come yet ends at once. It reports false for a dyno already
// ended.
func (ad *attachedDyno) stop(sig unix.Signal, line string) bool {
	ad.mu.Lock()
	if ad.done {
		ad.mu.Unlock()
		return false
	}
	d, secret, already := ad.dyno, ad.secret, ad.stopped
	ad.stopped = true
	ad.mu.Unlock()
	if d == nil {
		// Not started: if its secret is still to be claimed, this ends
		// it; if a client claimed it meanwhile, start sees stopped.
		if secret != "" && ad.r.d.tcp != nil && ad.r.d.tcp.rdv.Revoke(secret) {
			ad.finish(func() error { return ad.run.Log("Stopped before a client attached") })
		}
		return true
	}
	if sig == unix.SIGKILL {
		ad.run.Log("Stopping process with SIGKILL")
		d.Kill()
		return true
	}
	if already {
		return true
	}
	ad.run.Log(line)
	d.Signal(sig)
	grace := ad.r.d.cfg.StopTimeout
	ad.mu.Lock()
	if !ad.done {
		ad.killer = time.AfterFunc(grace, func() {
			ad.run.Log(fmt.Sprintf("Error R12 (Exit timeout) -> Process failed to exit within %s of %s", inSeconds(grace), unix.SignalName(sig)),
				"Stopping process with SIGKILL")
			d.Kill()
		})
	}
	ad.mu.Unlock()
	return true
}

// stopAttached is ps:stop for a run.N of heroku run; false if there is
// none of that name.
func (r *appRun) stopAttached(name string, sig unix.Signal) bool {
	r.mu.Lock()
	ad := r.attached[name]
	r.mu.Unlock()
	return ad != nil && ad.stop(sig, "Stopping all processes with SIGTERM")
}

// closeAttached stops every run.N of heroku run and waits for them.
func (r *appRun) closeAttached() {
	r.mu.Lock()
	ads := make([]*attachedDyno, 0, len(r.attached))
	for _, ad := range r.attached {
		ads = append(ads, ad)
	}
	r.mu.Unlock()
	for _, ad := range ads {
		ad.stop(unix.SIGTERM, "Stopping all processes with SIGTERM")
	}
	r.attachedWG.Wait()
}

// inSeconds writes a duration as Heroku's messages do: "60 seconds".
func inSeconds(d time.Duration) string {
	if d%time.Second != 0 {
		return d.String()
	}
	if d == time.Second {
		return "1 second"
	}
	return fmt.Sprintf("%d seconds", d/time.Second)
}
