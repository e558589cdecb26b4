// Package addons provisions Heroku-style add-ons on one machine: a
// database or a Redis for an app, made by a provider and attached to
// apps as a config var in a release.
//
// An add-on belongs to the app that created it and may be attached to
// others. What an add-on is (its service, plan and owner) is a record
// under $DYNO_HOME/addons/addons/NAME.json, whose creation reserves
// the name; which apps it is attached to is in their ledgers (see
// ledger.Attachment); the data and credentials are its provider's,
// under $DYNO_HOME/addons/SERVICE.
//
// # Servers
//
// A service whose add-ons live in a server of its own (one PostgreSQL
// cluster, one redis-server per machine) has a provider that is a
// [Server]. The daemon runs each such server that has been set up as a
// service of its own, in the foreground, restarted with back-off,
// logging to $DYNO_HOME/addons/SERVICE/logs and stopped cleanly with the
// daemon (supervisor/daemon/services.go). A provider that needs its
// server asks the daemon to start it through [Manager.Starter]; only
// when no daemon runs does it start the server detached itself, to run
// on its own until [Manager.Stop] or the daemon's next start takes it
// over.
//
// # Adding a service
//
// A service is one file: a Provider (provision, credentials,
// deprovision, info) and an entry in Services naming the service, its
// short alias, its plans and its config var. The Manager does the rest:
// names, records, attaching, detaching.
package addons

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
)

// A Provider makes and unmakes one service's add-ons. Its methods are
// given the add-on's name, which is unique on the machine; a provider
// keeps what it needs (passwords, say) under its own directory.
type Provider interface {
	// Provision makes the add-on (a database and role, an ACL user)
	// and returns the URL an app connects to it with.
	Provision(ctx context.Context, name, plan string) (url string, err error)
	// Credentials returns the add-on's URL again, for attaching it to
	// another app.
	Credentials(ctx context.Context, name string) (url string, err error)
	// Deprovision removes the add-on and its data for good. Removing
	// one that is gone already is not an error, so a destroy cut
	// short can be run again.
	Deprovision(ctx context.Context, name string) error
	// Info describes the add-on for addons:info: label, value pairs.
	Info(ctx context.Context, name string) ([][2]string, error)
}

// A Stopper is a Provider that runs a server of its own, which Stop
// shuts down cleanly when it runs detached, started by a command while
// no daemon ran.
type Stopper interface {
	Stop(ctx context.Context) error
}

// A Server is a Provider that runs one server of its own for the
// machine, which the daemon runs in the foreground as a service.
type Server interface {
	Provider
	Stopper
	// IsSetUp reports whether the server's files have been made (its
	// server.json is written last): the daemon runs set-up servers
	// from its start.
	IsSetUp() bool
	// Foreground makes the server's files the first time (initdb, a
	// conf; it does nothing once they are there) and returns how to run
	// the server in the foreground, logging to its stdout and stderr.
	Foreground(ctx context.Context) (Foreground, error)
	// Ready reports, as an error, whether the server started as pid
	// accepts connections.
	Ready(ctx context.Context, pid int) error
	// Running returns the pid of a server running on this provider's
	// files, 0 if none runs: one started detached, to be stopped with
	// Stop before the daemon runs its own.
	Running(ctx context.Context) (pid int, err error)
}

// Foreground is how a Server runs in the foreground.
type Foreground struct {
	Argv []string
	// Stop asks the server to stop cleanly (PostgreSQL's fast shutdown
	// is SIGINT; redis-server writes its data on SIGTERM). It is also
	// what the server gets when the process that started it dies.
	Stop syscall.Signal
	// Kill ends a server that did not stop within the stop timeout
	// (SIGQUIT, PostgreSQL's immediate shutdown; SIGKILL).
	Kill syscall.Signal
}

// ErrNoSupervisor is what a Manager's Starter returns when nothing runs
// the machine's add-on servers (no daemon runs): the provider then
// starts its server detached.
var ErrNoSupervisor = errors.New("no daemon runs the add-on servers")

// supervised is a provider that asks start to run its server before
// starting one detached.
type supervised interface {
	supervise(start func(ctx context.Context) error)
}

// A Service is a kind of add-on.
type Service struct {
	Name      string   // heroku-redis, as Heroku's marketplace names it
	Alias     string   // redis: what addons:create also takes, and the add-on names' prefix
	Plans     []string // the first is the default
	ConfigVar string   // the first attachment's name: REDIS, for REDIS_URL
	ColorVar  string   // a later attachment's name before its color: HEROKU_REDIS, for HEROKU_REDIS_RED_URL
	// External says what dyno.toml's [addons.ALIAS] url may point the
	// service at; nil: nothing (the provider is not pointable).
	External *External
	// New returns the service's provider, keeping its state under dir.
	New func(dir string) Provider
}

// External is what URL a service may be pointed at.
type External struct {
	Schemes []string // postgres, postgresql
	Example string   // for messages
}

// Services are the services dyno provides, by name.
func Services() []Service {
	return []Service{redisService(), postgresService()}
}

// FindService returns the service and plan spec names: SERVICE or
// SERVICE:PLAN, where SERVICE is a name or an alias.
func FindService(spec string) (Service, string, error) {
	name, plan, _ := strings.Cut(spec, ":")
	for _, s := range Services() {
		if name != s.Name && name != s.Alias {
			continue
		}
		if plan == "" {
			return s, s.Plans[0], nil
		}
		if !slices.Contains(s.Plans, plan) {
			return Service{}, "", fmt.Errorf("%s has no plan %q; its plans are %s", s.Name, plan, strings.Join(s.Plans, ", "))
		}
		return s, plan, nil
	}
	var names []string
	for _, s := range Services() {
		names = append(names, s.Name)
	}
	return Service{}, "", fmt.Errorf("Couldn't find either the add-on service or the add-on plan of %q; dyno provides %s", spec, strings.Join(names, ", "))
}

// An Addon is what the record of an add-on holds.
type Addon struct {
	Name    string    `json:"name"`    // redis-curved-12345
	Service string    `json:"service"` // heroku-redis
	Plan    string    `json:"plan"`    // mini
	Owner   string    `json:"owner"`   // the app that created it
	Created time.Time `json:"created_at"`
}

// ErrNoAddon is returned, wrapped, for an add-on name no record has.
var ErrNoAddon = errors.New("no such add-on")

// A Manager creates, attaches and destroys the add-ons of the apps in
// Home.
type Manager struct {
	Home app.Home
	// Starter, when set, asks whoever runs the machine's add-on servers
	// (the daemon) to set up and start the server of service, by its
	// alias (postgresql, redis), and returns once it accepts
	// connections, or why it cannot. It returns ErrNoSupervisor (wrapped
	// or not) when nothing runs them: the provider then starts its
	// server detached. Without a Starter, providers always do.
	Starter func(ctx context.Context, service string) error
}

func (m *Manager) dir() string { return filepath.Join(m.Home.Dir, "addons") }

// ServiceDir is where the provider of the service whose alias is alias
// keeps its server and data: $DYNO_HOME/addons/ALIAS.
func (m *Manager) ServiceDir(alias string) string { return filepath.Join(m.dir(), alias) }

// LogsDir is the log store of the server of the service whose alias is
// alias, which the daemon writes while it runs the server.
func (m *Manager) LogsDir(alias string) string { return filepath.Join(m.ServiceDir(alias), "logs") }

// external returns the server dyno.toml points s at ([addons.ALIAS]
// url), nil for dyno's own.
func (m *Manager) external(s Service) (*url.URL, error) {
	st, err := LoadSettings(m.Home.SizesFile())
	if err != nil {
		return nil, err
	}
	return st[s.Alias].URL, nil
}

// provider returns s's provider: on the server dyno.toml points it at,
// else on dyno's own, wired to m's Starter.
func (m *Manager) provider(s Service) (Provider, error) {
	p := s.New(m.ServiceDir(s.Alias))
	u, err := m.external(s)
	if err != nil {
		return nil, err
	}
	if u != nil {
		pp, ok := p.(pointable)
		if !ok {
			return nil, fmt.Errorf("%s: %s cannot be pointed at a server", m.Home.SizesFile(), s.Name)
		}
		pp.point(u)
		return p, nil
	}
	if sp, ok := p.(supervised); ok && m.Starter != nil {
		alias := s.Alias
		sp.supervise(func(ctx context.Context) error { return m.Starter(ctx, alias) })
	}
	return p, nil
}

// pointable is a provider that can make its add-ons on a server an
// operator runs (dyno.toml's [addons.SERVICE] url) instead of its own.
type pointable interface {
	point(u *url.URL)
}

// Servers returns the providers that run a server of their own, by
// their service's alias: not those dyno.toml points at another server
// (nor any, if dyno.toml cannot be read: the daemon refuses to start
// then, and commands say why).
func (m *Manager) Servers() map[string]Server {
	out := map[string]Server{}
	st, err := LoadSettings(m.Home.SizesFile())
	if err != nil {
		return out
	}
	for _, s := range Services() {
		if st[s.Alias].URL != nil {
			continue
		}
		if srv, ok := s.New(m.ServiceDir(s.Alias)).(Server); ok {
			out[s.Alias] = srv
		}
	}
	return out
}

// ServerOf returns the alias of the service whose server runs the
// add-on or service named name: a service's name or alias
// (heroku-postgresql, postgresql) or an add-on's name.
func (m *Manager) ServerOf(name string) (string, error) {
	s, _, err := FindService(name)
	if err != nil {
		ad, gerr := m.Get(name)
		if gerr != nil {
			return "", fmt.Errorf("%q is neither a service dyno provides nor an add-on: %w", name, gerr)
		}
		if s, _, err = FindService(ad.Service); err != nil {
			return "", err
		}
	}
	if _, ok := m.Servers()[s.Alias]; !ok {
		return "", fmt.Errorf("%s runs no server of its own", s.Name)
	}
	return s.Alias, nil
}

func (m *Manager) recordPath(name string) string {
	return filepath.Join(m.dir(), "addons", name+".json")
}

// Provider returns the provider of the service named name.
func (m *Manager) Provider(name string) (Provider, error) {
	for _, s := range Services() {
		if s.Name == name {
			return m.provider(s)
		}
	}
	return nil, fmt.Errorf("add-on service %q is not one dyno provides", name)
}

// Stop shuts down the servers the providers run detached on this
// machine (none runs so while a daemon runs them).
func (m *Manager) Stop(ctx context.Context) error {
	var errs []error
	for _, s := range Services() {
		if st, ok := s.New(m.ServiceDir(s.Alias)).(Stopper); ok {
			errs = append(errs, st.Stop(ctx))
		}
	}
	return errors.Join(errs...)
}

// Get returns the add-on named name.
func (m *Manager) Get(name string) (Addon, error) {
	var ad Addon
	if !validName(name) {
		return ad, fmt.Errorf("%w: %q", ErrNoAddon, name)
	}
	b, err := os.ReadFile(m.recordPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return ad, fmt.Errorf("%w: %s; dyno addons lists an app's add-ons", ErrNoAddon, name)
	}
	if err != nil {
		return ad, err
	}
	if err := json.Unmarshal(b, &ad); err != nil {
		return ad, fmt.Errorf("read add-on %s: %s: %w", name, m.recordPath(name), err)
	}
	return ad, nil
}

// validName reports whether name could be an add-on's: it is a file
// name, so it must not reach out of the records' directory.
func validName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// reserve writes the record of a new add-on under a made-up name,
// trying another while the name is taken: the exclusive create is what
// decides, so two creates never share a name.
func (m *Manager) reserve(s Service, plan, owner string) (Addon, error) {
	if err := os.MkdirAll(filepath.Dir(m.recordPath("x")), 0o700); err != nil {
		return Addon{}, err
	}
	const tries = 20
	for range tries {
		ad := Addon{Name: madeUpName(s.Alias), Service: s.Name, Plan: plan, Owner: owner, Created: time.Now().UTC().Truncate(time.Second)}
		b, err := json.Marshal(ad)
		if err != nil {
			return Addon{}, err
		}
		f, err := os.OpenFile(m.recordPath(ad.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return Addon{}, err
		}
		_, err = f.Write(append(b, '\n'))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
			return Addon{}, fmt.Errorf("write add-on record %s: %w", f.Name(), err)
		}
		return ad, nil
	}
	return Addon{}, fmt.Errorf("create add-on: %d made-up names were all taken", tries)
}

// Shapes for made-up add-on names, Heroku's style: postgresql-curved-12345.
var nameShapes = []string{
	"angular", "arched", "bent", "blocky", "concave", "conical", "convex", "crooked", "cubed", "curly",
	"curved", "cylindrical", "deep", "elliptical", "flat", "fluted", "folded", "globular", "hollow", "jagged",
	"looped", "narrow", "oblong", "octagonal", "opaque", "parallel", "pointed", "polygonal", "rectangular", "ridged",
	"rigid", "round", "shallow", "sinuous", "slanted", "slender", "solid", "spherical", "spiral", "square",
	"symmetrical", "tapered", "thin", "tight", "triangular", "tubular", "twisted", "vertical", "wavy", "wide",
}

func madeUpName(alias string) string {
	return fmt.Sprintf("%s-%s-%05d", alias, nameShapes[rand.IntN(len(nameShapes))], rand.IntN(100000))
}

// Colors of second and later attachments of a service, as Heroku's:
// HEROKU_POSTGRESQL_AMBER_URL.
var attachColors = []string{
	"AMBER", "AQUA", "BLACK", "BLUE", "BRONZE", "BROWN", "CHARCOAL", "COBALT", "COPPER", "CRIMSON",
	"CYAN", "GOLD", "GRAY", "GREEN", "IVORY", "JADE", "MAROON", "MAUVE", "NAVY", "OLIVE",
	"ONYX", "ORANGE", "PINK", "PUCE", "PURPLE", "RED", "ROSE", "SILVER", "TEAL", "WHITE", "YELLOW",
}

// attachName is the name an add-on of s is attached to a under when
// none is given: the service's own (DATABASE) if it is free, else a
// free color's.
func attachName(s Service, taken []ledger.Attachment) (string, error) {
	used := func(n string) bool {
		return slices.ContainsFunc(taken, func(x ledger.Attachment) bool { return x.Name == n })
	}
	if !used(s.ConfigVar) {
		return s.ConfigVar, nil
	}
	for _, i := range rand.Perm(len(attachColors)) {
		if n := s.ColorVar + "_" + attachColors[i]; !used(n) {
			return n, nil
		}
	}
	return "", fmt.Errorf("every %s_COLOR name is in use; give one with --as", s.ColorVar)
}

// checkAttachName reports whether name may name an attachment: it
// becomes a config var, NAME_URL.
func checkAttachName(name string) error {
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		return fmt.Errorf("%q is not an attachment name; use upper-case letters, digits and _, as in DATABASE", name)
	}
	for _, r := range name {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return fmt.Errorf("%q is not an attachment name; use upper-case letters, digits and _, as in DATABASE", name)
		}
	}
	return nil
}

// Create provisions an add-on of spec (SERVICE[:PLAN]) owned by a and
// attaches it to a, as name if as is not "" (the release "Attach NAME
// (@ref:ADDON)"). An add-on whose attaching fails is deprovisioned
// again, so a failed create leaves nothing behind.
func (m *Manager) Create(ctx context.Context, a *app.App, spec, as, user string) (Addon, ledger.Attachment, ledger.Release, error) {
	s, plan, err := FindService(spec)
	if err != nil {
		return Addon{}, ledger.Attachment{}, ledger.Release{}, err
	}
	if as != "" {
		if err := checkAttachName(as); err != nil {
			return Addon{}, ledger.Attachment{}, ledger.Release{}, err
		}
	}
	// Read before provisioning so that a name the app uses already is
	// refused without making anything; Attach checks again under the
	// ledger's lock.
	st, err := a.Ledger.State()
	if err != nil {
		return Addon{}, ledger.Attachment{}, ledger.Release{}, err
	}
	name := as
	if name == "" {
		if name, err = attachName(s, st.Attachments); err != nil {
			return Addon{}, ledger.Attachment{}, ledger.Release{}, err
		}
	} else if slices.ContainsFunc(st.Attachments, func(x ledger.Attachment) bool { return x.Name == as }) {
		return Addon{}, ledger.Attachment{}, ledger.Release{}, fmt.Errorf("⬢ %s has an add-on attached as %s already; choose another name with --as", a.Name, as)
	}
	p, err := m.provider(s)
	if err != nil {
		return Addon{}, ledger.Attachment{}, ledger.Release{}, err
	}
	ad, err := m.reserve(s, plan, a.Name)
	if err != nil {
		return Addon{}, ledger.Attachment{}, ledger.Release{}, err
	}
	url, err := p.Provision(ctx, ad.Name, plan)
	if err == nil {
		at := ledger.Attachment{Name: name, Addon: ad.Name, Service: s.Name, Plan: plan, Owner: a.Name, Created: ad.Created}
		var rel ledger.Release
		if rel, err = a.Attach(at, url, user); err == nil {
			return ad, at, rel, nil
		}
	}
	err = fmt.Errorf("create %s for ⬢ %s: %w", s.Name, a.Name, err)
	if derr := p.Deprovision(context.WithoutCancel(ctx), ad.Name); derr != nil {
		return Addon{}, ledger.Attachment{}, ledger.Release{}, errors.Join(err, fmt.Errorf("undo %s: %w", ad.Name, derr))
	}
	os.Remove(m.recordPath(ad.Name))
	return Addon{}, ledger.Attachment{}, ledger.Release{}, err
}

// Attachments returns every attachment of the add-on named name, in
// whichever app's ledger, by app name.
func (m *Manager) Attachments(name string) (map[string]ledger.Attachment, error) {
	apps, err := m.Home.List()
	if err != nil {
		return nil, err
	}
	out := map[string]ledger.Attachment{}
	for _, n := range apps {
		a, err := m.Home.Open(n)
		if err != nil {
			return nil, err
		}
		ats, err := a.Attachments()
		if err != nil {
			return nil, err
		}
		for _, at := range ats {
			if at.Addon == name {
				out[n] = at
			}
		}
	}
	return out, nil
}

// Destroy destroys the add-on named name: it is detached from every
// app, each in a release "Detach NAME (@ref:ADDON)", and then its data
// is removed. owner must be the app that owns it, so that a mistyped
// name cannot take another app's database.
func (m *Manager) Destroy(ctx context.Context, name, owner, user string) (Addon, error) {
	ad, err := m.Get(name)
	if err != nil {
		return Addon{}, err
	}
	if ad.Owner != owner {
		return Addon{}, fmt.Errorf("%s belongs to ⬢ %s, not ⬢ %s", name, ad.Owner, owner)
	}
	ats, err := m.Attachments(name)
	if err != nil {
		return Addon{}, err
	}
	for appName := range ats {
		a, err := m.Home.Open(appName)
		if err != nil {
			return Addon{}, err
		}
		if _, _, err := a.Detach(name, user); err != nil {
			return Addon{}, fmt.Errorf("destroy %s: %w", name, err)
		}
	}
	p, err := m.Provider(ad.Service)
	if err != nil {
		return Addon{}, err
	}
	if err := p.Deprovision(ctx, name); err != nil {
		return Addon{}, fmt.Errorf("destroy %s: %w", name, err)
	}
	if err := os.Remove(m.recordPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Addon{}, err
	}
	return ad, nil
}

// Attach attaches the existing add-on named name to a, as as if it is
// not "" (else as its service's name, or a color's), in a release
// "Attach NAME (@ref:ADDON)": one database shared by two apps.
func (m *Manager) Attach(ctx context.Context, name string, a *app.App, as, user string) (ledger.Attachment, ledger.Release, error) {
	ad, err := m.Get(name)
	if err != nil {
		return ledger.Attachment{}, ledger.Release{}, err
	}
	s, _, err := FindService(ad.Service)
	if err != nil {
		return ledger.Attachment{}, ledger.Release{}, err
	}
	if as == "" {
		st, err := a.Ledger.State()
		if err != nil {
			return ledger.Attachment{}, ledger.Release{}, err
		}
		if as, err = attachName(s, st.Attachments); err != nil {
			return ledger.Attachment{}, ledger.Release{}, err
		}
	} else if err := checkAttachName(as); err != nil {
		return ledger.Attachment{}, ledger.Release{}, err
	}
	p, err := m.provider(s)
	if err != nil {
		return ledger.Attachment{}, ledger.Release{}, err
	}
	url, err := p.Credentials(ctx, name)
	if err != nil {
		return ledger.Attachment{}, ledger.Release{}, err
	}
	at := ledger.Attachment{Name: as, Addon: ad.Name, Service: ad.Service, Plan: ad.Plan, Owner: ad.Owner, Created: time.Now().UTC().Truncate(time.Second)}
	rel, err := a.Attach(at, url, user)
	return at, rel, err
}

// Detach detaches the add-on (or attachment) named name from a, in a
// release "Detach NAME (@ref:ADDON)". The owner's own attachment stays
// until addons:destroy, as on Heroku, so that an add-on is never left
// attached to nothing.
func (m *Manager) Detach(a *app.App, name, user string) (ledger.Attachment, ledger.Release, error) {
	ats, err := a.Attachments()
	if err != nil {
		return ledger.Attachment{}, ledger.Release{}, err
	}
	for _, at := range ats {
		if (at.Addon == name || at.Name == name) && at.Owner == a.Name {
			return ledger.Attachment{}, ledger.Release{}, fmt.Errorf("%s belongs to ⬢ %s; destroy it instead: dyno addons:destroy %s -a %s --confirm %s", at.Addon, a.Name, at.Addon, a.Name, a.Name)
		}
	}
	return a.Detach(name, user)
}
