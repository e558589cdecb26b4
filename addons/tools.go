package addons

// What the pg: and redis: commands need to reach an add-on as an app
// does, with its own role or user: they go through the provider, which
// starts the server if it does not run.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A PostgresConn reaches one PostgreSQL add-on as its own role, with
// the programs (psql, pg_dump, pg_restore) of the server's version.
type PostgresConn struct {
	Addon   string // postgresql-curved-12345: its role and database
	URL     string // postgres://NAME:PW@127.0.0.1:PORT/NAME, as in DATABASE_URL
	Version string // the server's major version: 15
}

// Postgres returns how to reach the PostgreSQL add-on named name,
// starting the server if it does not run.
func (m *Manager) Postgres(ctx context.Context, name string) (PostgresConn, error) {
	ad, err := m.Get(name)
	if err != nil {
		return PostgresConn{}, err
	}
	s := postgresService()
	if ad.Service != s.Name {
		return PostgresConn{}, fmt.Errorf("%s is a %s add-on, not %s", name, ad.Service, s.Name)
	}
	pr, err := m.provider(s)
	if err != nil {
		return PostgresConn{}, err
	}
	p := pr.(*postgresProvider)
	srv, err := p.server(ctx)
	if err != nil {
		return PostgresConn{}, err
	}
	u, err := p.Credentials(ctx, name)
	if err != nil {
		return PostgresConn{}, err
	}
	return PostgresConn{Addon: name, URL: u, Version: srv.Version}, nil
}

// Program is the path of a PostgreSQL client program of the server's
// version (Debian's /usr/lib/postgresql/VERSION/bin/PROG), else the one
// in /usr/bin: pg_dump refuses a server newer than itself.
func (c PostgresConn) Program(prog string) string {
	p := postgresServer{Version: c.Version}.bin(prog)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return filepath.Join("/usr/bin", prog)
}

// Env is the environment that connects libpq programs to the add-on:
// the caller's, less its own PG* variables, plus the add-on's host,
// port, role, database and password. The password goes in the
// environment, where other users cannot read it, not on a command line.
func (c PostgresConn) Env() ([]string, error) {
	u, err := url.Parse(c.URL)
	if err != nil || u.User == nil {
		return nil, fmt.Errorf("the URL of %s is not a postgres:// URL with a user", c.Addon)
	}
	pw, _ := u.User.Password()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return append(env, "PGHOST="+u.Hostname(), "PGPORT="+u.Port(), "PGUSER="+u.User.Username(),
		"PGDATABASE="+strings.TrimPrefix(u.Path, "/"), "PGPASSWORD="+pw, "PGCONNECT_TIMEOUT=10",
		"PGAPPNAME=dyno"), nil
}

// Command is prog (psql, pg_dump, ...) of the server's version, set to
// connect to the add-on.
func (c PostgresConn) Command(ctx context.Context, prog string, args ...string) (*exec.Cmd, error) {
	env, err := c.Env()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, c.Program(prog), args...)
	cmd.Env = env
	return cmd, nil
}

// Query runs one SQL statement as the add-on's role and returns the
// fields of its first row: the statement is dyno's, never a user's.
func (c PostgresConn) Query(ctx context.Context, sql string) ([]string, error) {
	cmd, err := c.Command(ctx, "psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql)
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("psql as %s: %w: %s", c.Addon, err, oneLine(stderr.String()))
	}
	line, _, _ := strings.Cut(strings.TrimRight(string(out), "\n"), "\n")
	return strings.Split(line, "\t"), nil
}

// A RedisConn reaches one Redis add-on as its own ACL user.
type RedisConn struct {
	Addon string // redis-curved-12345: its user, and its keys' prefix
	URL   string // redis://NAME:PW@127.0.0.1:PORT, as in REDIS_URL
	p     *redisProvider
}

// Redis returns how to reach the Redis add-on named name, starting the
// server if it does not run.
func (m *Manager) Redis(ctx context.Context, name string) (RedisConn, error) {
	ad, err := m.Get(name)
	if err != nil {
		return RedisConn{}, err
	}
	s := redisService()
	if ad.Service != s.Name {
		return RedisConn{}, fmt.Errorf("%s is a %s add-on, not %s", name, ad.Service, s.Name)
	}
	pr, err := m.provider(s)
	if err != nil {
		return RedisConn{}, err
	}
	p := pr.(*redisProvider)
	c, _, err := p.admin(ctx)
	if err != nil {
		return RedisConn{}, err
	}
	c.Close()
	u, err := p.Credentials(ctx, name)
	if err != nil {
		return RedisConn{}, err
	}
	return RedisConn{Addon: name, URL: u, p: p}, nil
}

// Info is the server's INFO, field by field (redis_version,
// aof_enabled, maxmemory_policy, ...), and its timeout and
// notify-keyspace-events settings. INFO and CONFIG are administrative
// commands the add-on's user may not run, so the provider asks: it
// tells the add-on nothing about another's keys.
func (c RedisConn) Info(ctx context.Context) (map[string]string, error) {
	if c.p == nil {
		return nil, errors.New("redis: info of an add-on not opened with Manager.Redis")
	}
	rc, _, err := c.p.admin(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	r, err := rc.do("INFO")
	if err != nil {
		return nil, fmt.Errorf("redis: INFO: %w", err)
	}
	info := map[string]string{}
	for _, l := range strings.Split(fmt.Sprint(r), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && !strings.HasPrefix(k, "#") {
			info[k] = v
		}
	}
	for _, key := range []string{"timeout", "notify-keyspace-events"} {
		r, err := rc.do("CONFIG", "GET", key)
		if err != nil {
			return nil, fmt.Errorf("redis: CONFIG GET %s: %w", key, err)
		}
		if kv, ok := r.([]any); ok && len(kv) == 2 {
			info[key] = fmt.Sprint(kv[1])
		}
	}
	return info, nil
}
