package daemon

import (
	"errors"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/dyno-run/dyno/buildpacks/gitpush"
	"github.com/dyno-run/dyno/ledger/app"
)

// gitHTTP serves git's smart HTTP protocol for the apps' repositories on
// the API's TCP port, behind its token, so that a remote the Heroku CLI
// writes (https://HOST:PORT/APP.git, heroku git:remote) takes git push
// with its credential helper. git http-backend does the protocol, run
// as a CGI program (git-http-backend(1)); it runs git receive-pack, and
// that the app's pre-receive hook, as a push over a path or SSH does.
// Other paths go to next, the API.
func (d *Daemon) gitHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, rest, ok := gitRoute(r.URL.Path)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if rest != "/info/refs" && rest != "/git-upload-pack" && rest != "/git-receive-pack" {
			http.Error(w, "dyno serves git's smart HTTP protocol only; use git 1.6.6 or later", http.StatusNotFound)
			return
		}
		a, err := d.cfg.Home.Open(name)
		if errors.Is(err, app.ErrNotFound) {
			http.Error(w, "Couldn't find that app: "+name, http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if err := gitpush.EnsureApp(r.Context(), a); err != nil {
			d.logf("git: %v", err)
			http.Error(w, "the app's repository is not ready: "+err.Error(), http.StatusInternalServerError)
			return
		}
		git, err := exec.LookPath("git")
		if err != nil {
			http.Error(w, "git is not installed on the daemon's machine", http.StatusServiceUnavailable)
			return
		}
		// A push streams its pack in and its build's output out for as
		// long as the build takes (Heroku allows 15 minutes): the
		// server's timeouts, sized for API calls, do not apply.
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Time{})
		rc.SetWriteDeadline(time.Time{})

		user, _, _ := r.BasicAuth()
		if user == "" {
			user = "heroku"
		}
		h := &cgi.Handler{
			Path: git,
			Args: []string{"http-backend"},
			Dir:  a.Dir,
			// The repository is GIT_PROJECT_ROOT + PATH_INFO, and
			// PATH_INFO is the request's path less Root: /repo.git/...
			Env: append(gitpush.CleanEnv(os.Environ()),
				"GIT_PROJECT_ROOT="+a.Dir,
				"GIT_HTTP_EXPORT_ALL=1",
				// http-backend takes pushes only from a user it was
				// told of (http.receivepack's default); the token
				// check above is the authentication.
				"REMOTE_USER="+user,
				// Who pushed, for the release, as git-shell says it.
				"DYNO_PUSH_USER="+AccountEmail),
		}
		req := r.Clone(r.Context())
		req.URL.Path = "/repo.git" + rest
		h.ServeHTTP(flushWriter{w, rc}, req)
	})
}

// gitRoute splits /APP.git/REST; ok is false for any other path.
func gitRoute(p string) (name, rest string, ok bool) {
	first, rest, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	name, ok = strings.CutSuffix(first, ".git")
	if !ok || app.ValidName(name) != nil {
		return "", "", false
	}
	return name, "/" + rest, true
}

// flushWriter sends each write of the CGI program's output at once: a
// build's lines reach the pusher as they come, not 4 KiB at a time.
type flushWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.ResponseWriter.Write(p)
	if err == nil {
		f.rc.Flush()
	}
	return n, err
}
