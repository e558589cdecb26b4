package addons

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/dyno-run/dyno/internal/fsutil"
)

func postgresService() Service {
	return Service{
		Name: "heroku-postgresql", Alias: "postgresql",
		Plans:     []string{"essential-0", "essential-1", "essential-2", "standard-0", "premium-0"},
		ConfigVar: "DATABASE", ColorVar: "HEROKU_POSTGRESQL",
		External: &External{Schemes: []string{"postgres", "postgresql"}, Example: "postgres://dyno:PASSWORD@db.internal:5432/postgres"},
		New:      func(dir string) Provider { return &postgresProvider{dir: dir} },
	}
}

// postgresProvider keeps one PostgreSQL server for the machine under
// dir: data/ (the cluster, made by initdb, whose unix sockets are in it
// too), postgresql.log, superuser.pw (the superuser's password) and
// server.json, the major version and the port picked the first time.
// Each add-on is a role of its own name (LOGIN, nothing more) owning a
// database of the same name, on which CONNECT is revoked from PUBLIC,
// so one app's DATABASE_URL cannot reach another's database.
//
// The server is Debian's (/usr/lib/postgresql/VERSION/bin), the newest
// there when the cluster is made and that version from then on. The
// daemon runs it in the foreground (postgres -D data, stopped with
// SIGINT, PostgreSQL's fast shutdown); with no daemon, whoever first
// needs it starts it with pg_ctl, logging to postgresql.log, to run on
// its own until Stop or the daemon's start takes it over.
//
// Pointed at an operator's server instead (dyno.toml's
// [addons.postgresql] url), it runs none: each add-on is made there by
// the URL's user, which needs CREATEROLE and CREATEDB, and dir keeps
// only the add-ons' credentials, each saying which server it is on, so
// that add-ons are never looked for on the wrong one.
type postgresProvider struct {
	dir      string
	start    func(ctx context.Context) error // asks the daemon to run the server; nil: none
	external *url.URL                        // the operator's server; nil: dyno's own
}

func (p *postgresProvider) point(u *url.URL) { p.external = u }

func (p *postgresProvider) supervise(start func(ctx context.Context) error) { p.start = start }

type postgresServer struct {
	Version  string `json:"version"` // the major version: 15, of /usr/lib/postgresql/15/bin
	Port     int    `json:"port"`
	Password string `json:"-"` // the superuser's, from superuser.pw

	// An operator's server's (Host "" is dyno's own, on 127.0.0.1): its
	// host, the user and database dyno logs in to it with, and the URL's
	// query (sslmode=require, say), which the add-ons' URLs keep.
	Host    string     `json:"-"`
	User    string     `json:"-"`
	AdminDB string     `json:"-"`
	Query   url.Values `json:"-"`
}

// addr is the server's host:port.
func (srv postgresServer) addr() string {
	host := srv.Host
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(srv.Port))
}

type postgresCreds struct {
	Password string `json:"password"` // the role's; role and database are the add-on's name
	// Server is the operator's server the add-on is on, host:port; ""
	// for dyno's own.
	Server string `json:"server,omitempty"`
}

// serverKey is what an add-on's credentials say about srv: "" for
// dyno's own.
func (srv postgresServer) serverKey() string {
	if srv.Host == "" {
		return ""
	}
	return srv.addr()
}

// externalServer is the operator's server dyno.toml names.
func (p *postgresProvider) externalServer() (postgresServer, error) {
	u := p.external
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return postgresServer{}, fmt.Errorf("postgresql: %s: port: %w", u.Redacted(), err)
	}
	pw, _ := u.User.Password()
	srv := postgresServer{Host: u.Hostname(), Port: port, User: u.User.Username(), Password: pw,
		AdminDB: strings.TrimPrefix(u.Path, "/"), Query: u.Query()}
	if srv.AdminDB == "" {
		srv.AdminDB = "postgres"
	}
	// The client programs only: the newest installed, else Debian's
	// wrappers in /usr/bin.
	srv.Version, _ = newestPostgres()
	return srv, nil
}

// checkServer refuses to work on srv while add-ons made on another
// server have credentials here (checkCredsServer).
func (p *postgresProvider) checkServer(srv postgresServer) error {
	return checkCredsServer("postgresql", filepath.Join(p.dir, "users"), srv.serverKey(), srv.addr())
}

// postgresSuperuser is the cluster's superuser, whose password is the
// provider's own.
const postgresSuperuser = "postgres"

// maxSocketPath is the longest unix socket path: sun_path is 108 bytes,
// with the NUL (unix(7)).
const maxSocketPath = 107

// postgresRoot is where Debian's postgresql-VERSION packages put each
// version's programs, as postgresRoot/VERSION/bin.
const postgresRoot = "/usr/lib/postgresql"

func (p *postgresProvider) statePath() string    { return filepath.Join(p.dir, "server.json") }
func (p *postgresProvider) passwordPath() string { return filepath.Join(p.dir, "superuser.pw") }
func (p *postgresProvider) dataDir() string      { return filepath.Join(p.dir, "data") }
func (p *postgresProvider) logPath() string      { return filepath.Join(p.dir, "postgresql.log") }
func (p *postgresProvider) credsPath(name string) string {
	return filepath.Join(p.dir, "users", name+".json")
}

// newestPostgres returns the newest major version installed under
// postgresRoot that has the programs dyno runs.
func newestPostgres() (string, error) {
	entries, err := os.ReadDir(postgresRoot)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	best := -1
	for _, e := range entries {
		v, err := strconv.Atoi(e.Name())
		if err != nil || v <= best {
			continue
		}
		ok := true
		for _, prog := range []string{"initdb", "pg_ctl", "postgres"} {
			if _, err := os.Stat(filepath.Join(postgresRoot, e.Name(), "bin", prog)); err != nil {
				ok = false
			}
		}
		if ok {
			best = v
		}
	}
	if best < 0 {
		return "", fmt.Errorf("no PostgreSQL server in %s/*/bin (apt-get install postgresql)", postgresRoot)
	}
	return strconv.Itoa(best), nil
}

func (srv postgresServer) bin(prog string) string {
	if srv.Version == "" {
		return filepath.Join("/usr/bin", prog) // Debian's wrappers, for a server of the operator's
	}
	return filepath.Join(postgresRoot, srv.Version, "bin", prog)
}

func (srv postgresServer) psql() string {
	if _, err := os.Stat(srv.bin("psql")); err == nil {
		return srv.bin("psql")
	}
	return "/usr/bin/psql"
}

// pgRun runs a PostgreSQL program, its error carrying what it printed.
// initdb, pg_ctl and postgres refuse to run as root; the error says
// what to do then.
func pgRun(ctx context.Context, env []string, prog string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, prog, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String() + string(out))
		err = fmt.Errorf("%s: %w: %s", filepath.Base(prog), err, msg)
		if os.Geteuid() == 0 && strings.Contains(msg, "root") {
			err = fmt.Errorf("%w; PostgreSQL add-ons need dyno run as its own user, not root", err)
		}
	}
	return out, err
}

// setup makes the cluster the first time and returns its version, port
// and password.
func (p *postgresProvider) setup(ctx context.Context) (postgresServer, error) {
	var srv postgresServer
	b, err := os.ReadFile(p.statePath())
	if err == nil {
		if err := json.Unmarshal(b, &srv); err != nil {
			return srv, fmt.Errorf("read %s: %w", p.statePath(), err)
		}
		pw, err := os.ReadFile(p.passwordPath())
		if err != nil {
			return srv, err
		}
		srv.Password = strings.TrimSpace(string(pw))
		return srv, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return srv, err
	}
	if srv.Version, err = newestPostgres(); err != nil {
		return srv, err
	}
	for _, d := range []string{p.dir, filepath.Join(p.dir, "users")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return srv, err
		}
	}
	if srv.Password, err = newSecret(); err != nil {
		return srv, err
	}
	if err := fsutil.WriteFile(p.passwordPath(), []byte(srv.Password+"\n"), 0o600); err != nil {
		return srv, err
	}
	// A port free now, kept from then on, so that URLs in releases stay
	// good across restarts.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return srv, fmt.Errorf("pick a port for postgres: %w", err)
	}
	srv.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()

	// initdb wants a directory of its own: made aside and renamed, so
	// that one cut short is made again from nothing.
	tmp := p.dataDir() + ".new"
	if err := fsutil.RemoveAll(tmp); err != nil {
		return srv, err
	}
	if _, err := pgRun(ctx, nil, srv.bin("initdb"), "-D", tmp, "-U", postgresSuperuser,
		"--pwfile="+p.passwordPath(), "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"); err != nil {
		fsutil.RemoveAll(tmp)
		return srv, fmt.Errorf("initdb %s: %w", tmp, err)
	}
	// dyno talks to the server over TCP only; a unix socket, in the data
	// directory, is for an operator's psql -h DIR. Its path must fit
	// sun_path (108 bytes with the NUL, unix(7)), or postgres refuses to
	// start: under a DYNO_HOME too deep for it there is none.
	sockets := p.dataDir()
	if len(filepath.Join(sockets, fmt.Sprintf(".s.PGSQL.%d", srv.Port))) > maxSocketPath {
		sockets = ""
	}
	conf := fmt.Sprintf(`
# Written by dyno once; the port is kept. See addons/postgres.go.
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
unix_socket_permissions = 0700
`, srv.Port, strings.ReplaceAll(sockets, "'", "''"))
	f, err := os.OpenFile(filepath.Join(tmp, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return srv, err
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return srv, fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := os.Rename(tmp, p.dataDir()); err != nil {
		return srv, err
	}
	b, err = json.Marshal(srv)
	if err != nil {
		return srv, err
	}
	// Written last: its presence says the rest is there.
	return srv, fsutil.WriteFile(p.statePath(), b, 0o600)
}

// running reports whether the cluster's server runs, by pg_ctl status:
// 0 when it does, 3 when it does not.
func (p *postgresProvider) running(ctx context.Context, srv postgresServer) (bool, error) {
	_, err := pgRun(ctx, nil, srv.bin("pg_ctl"), "status", "-D", p.dataDir())
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 {
		return false, nil
	}
	return err == nil, err
}

// server returns the server, starting it if it does not run: the
// daemon sets it up and starts it when one runs, else it is set up here
// and started detached.
//
// Pointed at an operator's server, it is that one, as it is.
func (p *postgresProvider) server(ctx context.Context) (postgresServer, error) {
	if p.external == nil {
		// Checked first: nothing starts for add-ons it would refuse.
		if err := p.checkServer(postgresServer{}); err != nil {
			return postgresServer{}, err
		}
		return p.localServer(ctx)
	}
	srv, err := p.externalServer()
	if err == nil {
		err = p.checkServer(srv)
	}
	return srv, err
}

// localServer is server for dyno's own.
func (p *postgresProvider) localServer(ctx context.Context) (postgresServer, error) {
	if p.IsSetUp() {
		srv, err := p.setup(ctx)
		if err != nil {
			return srv, fmt.Errorf("postgresql: %w", err)
		}
		if up, err := p.running(ctx, srv); err != nil || up {
			return srv, err
		}
	}
	if p.start != nil {
		err := p.start(ctx)
		if err == nil {
			srv, err := p.setup(ctx)
			if err != nil {
				return srv, fmt.Errorf("postgresql: %w", err)
			}
			return srv, nil
		}
		if !errors.Is(err, ErrNoSupervisor) {
			return postgresServer{}, fmt.Errorf("postgresql: %w", err)
		}
	}
	srv, err := p.setup(ctx)
	if err != nil {
		return srv, fmt.Errorf("postgresql: %w", err)
	}
	_, err = pgRun(ctx, nil, srv.bin("pg_ctl"), "start", "-w", "-D", p.dataDir(), "-l", p.logPath())
	if err != nil {
		// Another command may have started it meanwhile.
		if up, _ := p.running(ctx, srv); up {
			return srv, nil
		}
		return srv, fmt.Errorf("postgresql: start %s (see %s): %w", p.dataDir(), p.logPath(), err)
	}
	return srv, nil
}

// IsSetUp reports whether the cluster has been made.
func (p *postgresProvider) IsSetUp() bool {
	_, err := os.Stat(p.statePath())
	return err == nil
}

// Foreground makes the cluster the first time and returns the server
// in the foreground: with logging_collector off, as initdb leaves it,
// it logs to stderr.
func (p *postgresProvider) Foreground(ctx context.Context) (Foreground, error) {
	srv, err := p.setup(ctx)
	if err != nil {
		return Foreground{}, fmt.Errorf("postgresql: %w", err)
	}
	return Foreground{Argv: []string{srv.bin("postgres"), "-D", p.dataDir()}, Stop: syscall.SIGINT, Kill: syscall.SIGQUIT}, nil
}

// postmaster returns the pid and the status line of postmaster.pid, as
// the postmaster writes them: "ready" once it accepts connections.
func (p *postgresProvider) postmaster() (int, string, error) {
	b, err := os.ReadFile(filepath.Join(p.dataDir(), "postmaster.pid"))
	if err != nil {
		return 0, "", err
	}
	lines := strings.Split(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil {
		return 0, "", fmt.Errorf("postmaster.pid: %q is no pid", lines[0])
	}
	status := ""
	if len(lines) > 7 {
		status = strings.TrimSpace(lines[7])
	}
	return pid, status, nil
}

// Ready reports whether the postmaster pid says it is ready in
// postmaster.pid, which is what pg_ctl start -w waits for.
func (p *postgresProvider) Ready(ctx context.Context, pid int) error {
	got, status, err := p.postmaster()
	if err != nil {
		return err
	}
	if got != pid || status != "ready" {
		return fmt.Errorf("postgresql: postmaster.pid says %d %q, not %d ready", got, status, pid)
	}
	return nil
}

// Running returns the pid in postmaster.pid if that process lives and is
// a postgres, as pg_ctl status finds it (without pg_ctl, which refuses
// to run as root).
func (p *postgresProvider) Running(ctx context.Context) (int, error) {
	pid, _, err := p.postmaster()
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
		return 0, nil // a stale file: the postmaster died
	}
	return pid, nil
}

// sql runs statements, each on its own (CREATE DATABASE refuses a
// transaction), as the server's admin (dyno's superuser, or the user
// of the operator's URL) over TCP, and returns what they print,
// unaligned. db "" is the admin's own database.
func (p *postgresProvider) sql(ctx context.Context, srv postgresServer, db string, stmts ...string) (string, error) {
	user, host := srv.User, srv.Host
	if user == "" {
		user = postgresSuperuser
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if db == "" {
		db = srv.AdminDB
	}
	if db == "" {
		db = "postgres"
	}
	args := []string{"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", host, "-p", strconv.Itoa(srv.Port), "-U", user, "-d", db}
	for _, s := range stmts {
		args = append(args, "-c", s)
	}
	env := []string{"PGPASSWORD=" + srv.Password, "PGCONNECT_TIMEOUT=10"}
	// The URL's TLS settings, as libpq's environment takes them.
	for k, e := range map[string]string{"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT"} {
		if v := srv.Query.Get(k); v != "" {
			env = append(env, e+"="+v)
		}
	}
	out, err := pgRun(ctx, env, srv.psql(), args...)
	return strings.TrimSpace(string(out)), err
}

// quoteIdent and quoteLiteral quote names and passwords dyno made, for
// SQL; never anything a user typed.
func quoteIdent(s string) string   { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

func (p *postgresProvider) url(srv postgresServer, name string, cr postgresCreds) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(name, cr.Password),
		Host: srv.addr(), Path: "/" + name}
	// An operator's server's TLS settings hold for the add-ons too.
	q := url.Values{}
	for _, k := range []string{"sslmode", "sslrootcert"} {
		if v := srv.Query.Get(k); v != "" {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// creds reads the add-on's credentials.
func (p *postgresProvider) creds(name string) (postgresCreds, error) {
	var cr postgresCreds
	b, err := os.ReadFile(p.credsPath(name))
	if err != nil {
		return cr, fmt.Errorf("postgresql: credentials of %s: %w", name, err)
	}
	if err := json.Unmarshal(b, &cr); err != nil {
		return cr, fmt.Errorf("postgresql: credentials of %s: %s: %w", name, p.credsPath(name), err)
	}
	return cr, nil
}

func (p *postgresProvider) Provision(ctx context.Context, name, plan string) (string, error) {
	if !validName(name) {
		return "", fmt.Errorf("postgresql: provision: %q is not an add-on name", name)
	}
	srv, err := p.server(ctx)
	if err != nil {
		return "", err
	}
	pass, err := newSecret()
	if err != nil {
		return "", err
	}
	cr := postgresCreds{Password: pass, Server: srv.serverKey()}
	b, err := json.Marshal(cr)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p.credsPath(name)), 0o700); err != nil {
		return "", fmt.Errorf("postgresql: provision %s: %w", name, err)
	}
	if err := fsutil.WriteFile(p.credsPath(name), b, 0o600); err != nil {
		return "", fmt.Errorf("postgresql: provision %s: %w", name, err)
	}
	id := quoteIdent(name)
	stmts := []string{"CREATE ROLE " + id + " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD " + quoteLiteral(pass)}
	if srv.Host != "" {
		// An operator's admin is no superuser: to make a database
		// owned by the role it must be able to SET ROLE to it, which
		// PostgreSQL 16 no longer grants to the role's creator.
		stmts = append(stmts, "GRANT "+id+" TO CURRENT_USER")
	}
	stmts = append(stmts,
		"CREATE DATABASE "+id+" OWNER "+id,
		"REVOKE ALL ON DATABASE "+id+" FROM PUBLIC")
	if srv.Host == "" {
		// Add-on roles have no business in the cluster's own
		// databases. (An operator's server's are the operator's.)
		stmts = append(stmts, "REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1 FROM PUBLIC")
	}
	_, err = p.sql(ctx, srv, "", stmts...)
	if err != nil {
		return "", fmt.Errorf("postgresql: provision %s: %w", name, err)
	}
	return p.url(srv, name, cr), nil
}

func (p *postgresProvider) Credentials(ctx context.Context, name string) (string, error) {
	var srv postgresServer
	var err error
	if p.external != nil {
		srv, err = p.externalServer()
	} else {
		srv, err = p.setup(ctx)
	}
	if err != nil {
		return "", fmt.Errorf("postgresql: %w", err)
	}
	cr, err := p.creds(name)
	if err != nil {
		return "", err
	}
	if cr.Server != srv.serverKey() {
		if err := p.checkServer(srv); err != nil {
			return "", err
		}
		return "", fmt.Errorf("postgresql: %s is on %q, not %s", name, cr.Server, srv.addr())
	}
	return p.url(srv, name, cr), nil
}

// Deprovision stops the role logging in, ends its sessions and any on
// its database, and drops the database and the role.
func (p *postgresProvider) Deprovision(ctx context.Context, name string) error {
	if !validName(name) {
		return fmt.Errorf("postgresql: deprovision: %q is not an add-on name", name)
	}
	srv, err := p.server(ctx)
	if err != nil {
		return err
	}
	id, lit := quoteIdent(name), quoteLiteral(name)
	_, err = p.sql(ctx, srv, "",
		"DO $$BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = "+lit+") THEN ALTER ROLE "+id+" NOLOGIN; END IF; END$$",
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = "+lit+" OR datname = "+lit,
		"DROP DATABASE IF EXISTS "+id+" WITH (FORCE)",
		"DROP ROLE IF EXISTS "+id)
	if err != nil {
		return fmt.Errorf("postgresql: deprovision %s: %w", name, err)
	}
	if err := os.Remove(p.credsPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (p *postgresProvider) Info(ctx context.Context, name string) ([][2]string, error) {
	srv, err := p.server(ctx)
	if err != nil {
		return nil, err
	}
	version, err := p.sql(ctx, srv, "", "SHOW server_version")
	if err != nil {
		return nil, fmt.Errorf("postgresql: info %s: %w", name, err)
	}
	return [][2]string{
		{"Server", srv.addr()},
		{"Version", version},
		{"Database", name},
		{"User", name},
	}, nil
}

// Stop shuts the server down, ending sessions and checkpointing (pg_ctl
// -m fast). A server that does not run is not an error, nor is a
// machine that never made one.
func (p *postgresProvider) Stop(ctx context.Context) error {
	if _, err := os.Stat(p.statePath()); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	srv, err := p.setup(ctx)
	if err != nil {
		return fmt.Errorf("postgresql: stop: %w", err)
	}
	if up, err := p.running(ctx, srv); err != nil || !up {
		return err
	}
	if _, err := pgRun(ctx, nil, srv.bin("pg_ctl"), "stop", "-w", "-m", "fast", "-D", p.dataDir()); err != nil {
		return fmt.Errorf("postgresql: stop %s: %w", p.dataDir(), err)
	}
	return nil
}
