package addons

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
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
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
)

func redisService() Service {
	return Service{
		Name: "heroku-redis", Alias: "redis",
		Plans:     []string{"mini", "premium-0"},
		ConfigVar: "REDIS", ColorVar: "HEROKU_REDIS",
		External: &External{Schemes: []string{"redis"}, Example: "redis://default:PASSWORD@cache.internal:6379"},
		New:      func(dir string) Provider { return &redisProvider{dir: dir} },
	}
}

// redisProvider keeps one redis-server for the machine under dir:
// redis.conf, users.acl, data/ (an append-only file, so a kill -9
// loses nothing acknowledged) and server.json, the port picked the
// first time and the admin's password. Each add-on is an ACL user of
// its own name, allowed only keys and channels under "NAME:" and no
// dangerous or administrative commands (FLUSHALL, CONFIG, KEYS, ...),
// so one app's credentials cannot read another's keys. Redis' ACLs
// cannot confine a user to a numbered database, hence prefixes.
//
// The daemon runs the server in the foreground (redis-server redis.conf
// --daemonize no, stopped with SIGTERM, on which it writes its data);
// with no daemon, whoever first needs it starts it daemonized, logging
// to redis.log, to run on its own until Stop or the daemon's start takes
// it over. redis.conf says neither: each start says which (confs of
// older homes say daemonize yes, which the command line overrides).
//
// Pointed at an operator's server instead (dyno.toml's [addons.redis]
// url), it runs none: each add-on is an ACL user made there by the
// URL's user, saved with ACL SAVE (or CONFIG REWRITE where the server
// keeps its users in its config), and dir keeps only the add-ons'
// credentials, each saying which server it is on.
type redisProvider struct {
	dir      string
	start    func(ctx context.Context) error // asks the daemon to run the server; nil: none
	external *url.URL                        // the operator's server; nil: dyno's own
}

func (p *redisProvider) supervise(start func(ctx context.Context) error) { p.start = start }

func (p *redisProvider) point(u *url.URL) { p.external = u }

type redisServer struct {
	Port     int    `json:"port"`
	Password string `json:"password"` // the default user's, the provider's own
	// An operator's server's host and user (Host "": dyno's own, on
	// 127.0.0.1, as default).
	Host string `json:"-"`
	User string `json:"-"`
}

// addr is the server's host:port.
func (srv redisServer) addr() string {
	host := srv.Host
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(srv.Port))
}

// serverKey is what an add-on's credentials say about srv: "" for
// dyno's own.
func (srv redisServer) serverKey() string {
	if srv.Host == "" {
		return ""
	}
	return srv.addr()
}

type redisCreds struct {
	User     string `json:"user"`
	Password string `json:"password"`
	// Server is the operator's server the add-on is on, host:port; ""
	// for dyno's own.
	Server string `json:"server,omitempty"`
}

// externalServer is the operator's server dyno.toml names.
func (p *redisProvider) externalServer() (redisServer, error) {
	u := p.external
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return redisServer{}, fmt.Errorf("redis: %s: port: %w", u.Redacted(), err)
	}
	pw, _ := u.User.Password()
	return redisServer{Host: u.Hostname(), Port: port, User: u.User.Username(), Password: pw}, nil
}

// checkServer refuses to work on srv while add-ons made on another
// server have credentials here (checkCredsServer).
func (p *redisProvider) checkServer(srv redisServer) error {
	return checkCredsServer("redis", filepath.Join(p.dir, "users"), srv.serverKey(), srv.addr())
}

func (p *redisProvider) statePath() string { return filepath.Join(p.dir, "server.json") }
func (p *redisProvider) credsPath(name string) string {
	return filepath.Join(p.dir, "users", name+".json")
}

// setup writes the server's files the first time and returns its port
// and password.
func (p *redisProvider) setup() (redisServer, error) {
	var srv redisServer
	b, err := os.ReadFile(p.statePath())
	if err == nil {
		if err := json.Unmarshal(b, &srv); err != nil {
			return srv, fmt.Errorf("read %s: %w", p.statePath(), err)
		}
		return srv, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return srv, err
	}
	for _, d := range []string{p.dir, filepath.Join(p.dir, "data"), filepath.Join(p.dir, "users")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return srv, err
		}
	}
	// A port free now, kept from then on, so that URLs in releases stay
	// good across restarts.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return srv, fmt.Errorf("pick a port for redis-server: %w", err)
	}
	srv.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	if srv.Password, err = newSecret(); err != nil {
		return srv, err
	}
	conf := fmt.Sprintf(`# Written by dyno once; the port is kept. See addons/redis.go.
bind 127.0.0.1
protected-mode yes
port %d
dir %s
aclfile %s
appendonly yes
appendfsync everysec
pidfile %s
logfile %s
`, srv.Port, filepath.Join(p.dir, "data"), filepath.Join(p.dir, "users.acl"),
		filepath.Join(p.dir, "redis.pid"), filepath.Join(p.dir, "redis.log"))
	sum := sha256.Sum256([]byte(srv.Password))
	acl := "user default on #" + hex.EncodeToString(sum[:]) + " ~* &* +@all\n"
	if err := fsutil.WriteFile(filepath.Join(p.dir, "redis.conf"), []byte(conf), 0o600); err != nil {
		return srv, err
	}
	if err := fsutil.WriteFile(filepath.Join(p.dir, "users.acl"), []byte(acl), 0o600); err != nil {
		return srv, err
	}
	b, err = json.Marshal(srv)
	if err != nil {
		return srv, err
	}
	// Written last: its presence says the rest is there.
	return srv, fsutil.WriteFile(p.statePath(), b, 0o600)
}

// login connects to the server as its default user.
func (p *redisProvider) login(ctx context.Context, srv redisServer) (*respConn, error) {
	addr := srv.addr()
	c, err := dialRESP(ctx, addr)
	if err != nil {
		return nil, err
	}
	user := srv.User
	if user == "" {
		user = "default"
	}
	if _, err := c.do("AUTH", user, srv.Password); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis: log in to %s: %w", addr, err)
	}
	return c, nil
}

// admin returns a connection to the server as its default user,
// starting the server if it does not answer: the daemon sets it up and
// starts it when one runs, else it is set up here and started
// daemonized.
//
// Pointed at an operator's server, it logs in there, as it is.
func (p *redisProvider) admin(ctx context.Context) (*respConn, redisServer, error) {
	if p.external != nil {
		srv, err := p.externalServer()
		if err == nil {
			err = p.checkServer(srv)
		}
		if err != nil {
			return nil, srv, err
		}
		c, err := p.login(ctx, srv)
		if err != nil {
			return nil, srv, fmt.Errorf("redis: %s: %w", p.external.Redacted(), err)
		}
		return c, srv, nil
	}
	// Checked first: nothing starts for add-ons it would refuse.
	if err := p.checkServer(redisServer{}); err != nil {
		return nil, redisServer{}, err
	}
	return p.localAdmin(ctx)
}

// localAdmin is admin on dyno's own server.
func (p *redisProvider) localAdmin(ctx context.Context) (*respConn, redisServer, error) {
	if p.IsSetUp() {
		srv, err := p.setup()
		if err != nil {
			return nil, srv, fmt.Errorf("redis: %w", err)
		}
		c, err := p.login(ctx, srv)
		if err == nil {
			return c, srv, nil
		}
		if errors.As(err, new(respError)) {
			return nil, srv, err // something answers, and refuses us
		}
	}
	if p.start != nil {
		err := p.start(ctx)
		if err == nil {
			srv, err := p.setup()
			if err != nil {
				return nil, srv, fmt.Errorf("redis: %w", err)
			}
			c, err := p.login(ctx, srv)
			return c, srv, err
		}
		if !errors.Is(err, ErrNoSupervisor) {
			return nil, redisServer{}, fmt.Errorf("redis: %w", err)
		}
	}
	srv, err := p.setup()
	if err != nil {
		return nil, srv, fmt.Errorf("redis: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port))
	login := func() (*respConn, error) { return p.login(ctx, srv) }
	c, err := login()
	if err == nil {
		return c, srv, nil // started meanwhile
	}
	if errors.As(err, new(respError)) {
		return nil, srv, err
	}
	conf := filepath.Join(p.dir, "redis.conf")
	if out, err := exec.CommandContext(ctx, "redis-server", conf, "--daemonize", "yes").CombinedOutput(); err != nil {
		return nil, srv, fmt.Errorf("redis: start redis-server %s: %w: %s", conf, err, strings.TrimSpace(string(out)))
	}
	// daemonize forks before the server listens: wait for it, and for
	// it to load its append-only file, during which it takes AUTH but
	// answers other commands -LOADING.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := login()
		if err == nil {
			if _, err = c.do("PING"); err == nil {
				return c, srv, nil
			}
			c.Close()
			if !strings.HasPrefix(err.Error(), "LOADING") {
				return nil, srv, fmt.Errorf("redis: %w", err)
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, srv, fmt.Errorf("redis: redis-server did not answer on %s (see %s): %w", addr, filepath.Join(p.dir, "redis.log"), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// IsSetUp reports whether the server's files have been written.
func (p *redisProvider) IsSetUp() bool {
	_, err := os.Stat(p.statePath())
	return err == nil
}

// Foreground writes the server's files the first time and returns the
// server in the foreground, logging to stdout.
func (p *redisProvider) Foreground(ctx context.Context) (Foreground, error) {
	if _, err := p.setup(); err != nil {
		return Foreground{}, fmt.Errorf("redis: %w", err)
	}
	return Foreground{
		Argv: []string{"redis-server", filepath.Join(p.dir, "redis.conf"), "--daemonize", "no", "--logfile", ""},
		Stop: syscall.SIGTERM, Kill: syscall.SIGKILL,
	}, nil
}

// Ready reports whether the server answers PING as its default user:
// one loading its append-only file answers LOADING.
func (p *redisProvider) Ready(ctx context.Context, pid int) error {
	srv, err := p.setup()
	if err != nil {
		return err
	}
	c, err := p.login(ctx, srv)
	if err != nil {
		return err
	}
	defer c.Close()
	r, err := c.do("PING")
	if err != nil {
		return err
	}
	if r != "PONG" {
		return fmt.Errorf("redis: PING answered %v", r)
	}
	return nil
}

// Running returns the pid of a server that answers on the port as its
// default user (-1 if it does not say which), 0 if none answers; an
// error if what answers refuses the password.
func (p *redisProvider) Running(ctx context.Context) (int, error) {
	srv, err := p.setup()
	if err != nil {
		return 0, err
	}
	c, err := p.login(ctx, srv)
	if errors.As(err, new(respError)) {
		return 0, err
	}
	if err != nil {
		return 0, nil
	}
	defer c.Close()
	// INFO's process_id, which a redis.pid left by a crash cannot
	// outdate.
	if r, err := c.do("INFO", "server"); err == nil {
		for _, l := range strings.Split(fmt.Sprint(r), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "process_id:"); ok {
				if pid, err := strconv.Atoi(v); err == nil {
					return pid, nil
				}
			}
		}
	}
	return -1, nil
}

func (p *redisProvider) url(srv redisServer, cr redisCreds) string {
	u := url.URL{Scheme: "redis", User: url.UserPassword(cr.User, cr.Password), Host: srv.addr()}
	return u.String()
}

// saveACL makes the server keep its users across restarts: ACL SAVE
// where it has an aclfile (dyno's own has), else CONFIG REWRITE where
// it keeps users in its config file.
func saveACL(c *respConn) error {
	_, err := c.do("ACL", "SAVE")
	if err == nil {
		return nil
	}
	if _, rerr := c.do("CONFIG", "REWRITE"); rerr != nil {
		return fmt.Errorf("ACL SAVE: %w; CONFIG REWRITE: %v (give the server an aclfile or a config file it may rewrite)", err, rerr)
	}
	return nil
}

func (p *redisProvider) Provision(ctx context.Context, name, plan string) (string, error) {
	c, srv, err := p.admin(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	pass, err := newSecret()
	if err != nil {
		return "", err
	}
	cr := redisCreds{User: name, Password: pass, Server: srv.serverKey()}
	b, err := json.Marshal(cr)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p.credsPath(name)), 0o700); err != nil {
		return "", fmt.Errorf("redis: provision %s: %w", name, err)
	}
	if err := fsutil.WriteFile(p.credsPath(name), b, 0o600); err != nil {
		return "", fmt.Errorf("redis: provision %s: %w", name, err)
	}
	if _, err := c.do("ACL", "SETUSER", name, "reset", "on", ">"+pass, "~"+name+":*", "&"+name+":*",
		"+@all", "-@dangerous", "-@admin"); err != nil {
		return "", fmt.Errorf("redis: provision %s: ACL SETUSER: %w", name, err)
	}
	if err := saveACL(c); err != nil {
		return "", fmt.Errorf("redis: provision %s: %w", name, err)
	}
	return p.url(srv, cr), nil
}

func (p *redisProvider) Credentials(ctx context.Context, name string) (string, error) {
	var srv redisServer
	var err error
	if p.external != nil {
		srv, err = p.externalServer()
	} else {
		srv, err = p.setup()
	}
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p.credsPath(name))
	if err != nil {
		return "", fmt.Errorf("redis: credentials of %s: %w", name, err)
	}
	var cr redisCreds
	if err := json.Unmarshal(b, &cr); err != nil {
		return "", fmt.Errorf("redis: credentials of %s: %s: %w", name, p.credsPath(name), err)
	}
	if cr.Server != srv.serverKey() {
		if err := p.checkServer(srv); err != nil {
			return "", err
		}
		return "", fmt.Errorf("redis: %s is on %q, not %s", name, cr.Server, srv.addr())
	}
	return p.url(srv, cr), nil
}

// Deprovision removes the user first, so that nothing writes while its
// keys go, then the keys.
func (p *redisProvider) Deprovision(ctx context.Context, name string) error {
	c, _, err := p.admin(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.do("ACL", "DELUSER", name); err != nil {
		return fmt.Errorf("redis: deprovision %s: ACL DELUSER: %w", name, err)
	}
	if err := saveACL(c); err != nil {
		return fmt.Errorf("redis: deprovision %s: %w", name, err)
	}
	cursor := "0"
	for {
		r, err := c.do("SCAN", cursor, "MATCH", name+":*", "COUNT", "1000")
		if err != nil {
			return fmt.Errorf("redis: deprovision %s: SCAN: %w", name, err)
		}
		pair, ok := r.([]any)
		if !ok || len(pair) != 2 {
			return fmt.Errorf("redis: deprovision %s: SCAN replied %v", name, r)
		}
		cursor, _ = pair[0].(string)
		keys, _ := pair[1].([]any)
		if len(keys) > 0 {
			args := []string{"UNLINK"}
			for _, k := range keys {
				args = append(args, fmt.Sprint(k))
			}
			if _, err := c.do(args...); err != nil {
				return fmt.Errorf("redis: deprovision %s: UNLINK: %w", name, err)
			}
		}
		if cursor == "0" {
			break
		}
	}
	if err := os.Remove(p.credsPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (p *redisProvider) Info(ctx context.Context, name string) ([][2]string, error) {
	c, srv, err := p.admin(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	version := ""
	if r, err := c.do("INFO", "server"); err == nil {
		for _, l := range strings.Split(fmt.Sprint(r), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
				version = v
			}
		}
	}
	return [][2]string{
		{"Server", srv.addr()},
		{"Version", version},
		{"User", name},
		{"Key prefix", name + ":"},
	}, nil
}

// Stop shuts the server down, writing its data first. A server that
// does not run is not an error.
func (p *redisProvider) Stop(ctx context.Context) error {
	if _, err := os.Stat(p.statePath()); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	srv, err := p.setup()
	if err != nil {
		return err
	}
	c, err := dialRESP(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port)))
	if err != nil {
		return nil // not running
	}
	defer c.Close()
	if _, err := c.do("AUTH", "default", srv.Password); err != nil {
		return fmt.Errorf("redis: stop: %w", err)
	}
	// SHUTDOWN closes the connection instead of replying.
	if _, err := c.do("SHUTDOWN", "SAVE"); err != nil && !errors.As(err, new(respError)) {
		return nil
	} else if err != nil {
		return fmt.Errorf("redis: stop: %w", err)
	}
	return nil
}

// newSecret is 32 random bytes in hex: a password.
func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
