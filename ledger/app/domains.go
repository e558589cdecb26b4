package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/supervisor/router"
	"golang.org/x/sys/unix"
)

// NormalDomain is host as the ledger records a custom domain: lower
// case, without a trailing dot, checked by the router's rule (a
// hostname, or "*." and a hostname with a dot in it).
func NormalDomain(host string) (string, error) {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if err := router.ValidDomain(h); err != nil {
		return "", fmt.Errorf("%q is not a domain; use a hostname such as www.example.com, or *.example.com for every name under it", host)
	}
	return h, nil
}

// DefaultHost is app's default hostname under the router's domain,
// APP.DOMAIN.
func DefaultHost(app, domain string) string { return app + "." + domain }

// lockDomains takes the home-wide lock under which a domain is checked
// against every app's and recorded, and certificate files are written
// and removed: without it, two apps adding one host at once could both
// find it free. The lock is a flock(2) on the apps folder, which every
// process of this home shares and nothing replaces; it is released when
// the file is closed, or by the kernel when the process dies. how is
// unix.LOCK_EX to change, unix.LOCK_SH to read.
func (h Home) lockDomains(how int) (*os.File, error) {
	if err := os.MkdirAll(h.appsDir(), 0o700); err != nil {
		return nil, fmt.Errorf("lock domains: %w", err)
	}
	return lockDir(h.appsDir(), how)
}

// holder is the app other than self that answers for host: the app
// whose default hostname it is (isDefault), or the app that has it as a
// custom domain; "" if none.
func (h Home) holder(self, host, domain string) (name string, isDefault bool, err error) {
	names, err := h.List()
	if err != nil {
		return "", false, err
	}
	for _, n := range names {
		if n == self {
			continue
		}
		if host == DefaultHost(n, domain) {
			return n, true, nil
		}
		s, err := h.app(n).Ledger.State()
		if errors.Is(err, fs.ErrNotExist) {
			continue // destroyed since it was listed
		}
		if err != nil {
			return "", false, fmt.Errorf("check %s against ⬢ %s: %w", host, n, err)
		}
		if slices.Contains(s.Domains, host) {
			return n, false, nil
		}
	}
	return "", false, nil
}

// Domains returns the app's custom domains, sorted, lower-case.
func (a *App) Domains() ([]string, error) {
	s, err := a.Ledger.State()
	if err != nil {
		return nil, err
	}
	return s.Domains, nil
}

// AddDomain records host as a custom domain of the app and returns it
// as recorded (lower case). domain is the router's ([router] domain in
// dyno.toml), under which every app has its default hostname. A host
// another app has, or another app's default hostname, is refused with
// the app named, as is one this app has already; nothing is recorded
// then.
func (a *App) AddDomain(host, domain, user string) (string, error) {
	host, err := NormalDomain(host)
	if err != nil {
		return "", err
	}
	if host == DefaultHost(a.Name, domain) {
		return "", fmt.Errorf("%s is the default hostname of ⬢ %s; it needs no adding", host, a.Name)
	}
	lock, err := a.home.lockDomains(unix.LOCK_EX)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	other, isDefault, err := a.home.holder(a.Name, host, domain)
	switch {
	case err != nil:
		return "", err
	case isDefault:
		return "", fmt.Errorf("%s is the default hostname of ⬢ %s; pick another host", host, other)
	case other != "":
		return "", fmt.Errorf("%s is already added to ⬢ %s; remove it there first (dyno domains:remove %s -a %s)", host, other, host, other)
	}
	_, err = a.Ledger.Append(func(s *ledger.State) ([]ledger.Record, error) {
		if slices.Contains(s.Domains, host) {
			return nil, fmt.Errorf("Domain already added to this app: %s is a domain of ⬢ %s", host, a.Name)
		}
		next := append(slices.Clone(s.Domains), host)
		slices.Sort(next)
		return []ledger.Record{{Type: ledger.TypeDomains, User: user, Domains: next}}, nil
	})
	if err != nil {
		return "", err
	}
	return host, nil
}

// RemoveDomain removes the custom domain host from the app, and the
// certificate for it, if there is one, in the same write. A host the
// app does not have is an error.
func (a *App) RemoveDomain(host, user string) (string, error) {
	h, err := NormalDomain(host)
	if err != nil {
		return "", err
	}
	_, err = a.removeDomains(user, func(cur []string) ([]string, error) {
		if !slices.Contains(cur, h) {
			return nil, fmt.Errorf("Couldn't find that domain: %s is not a domain of ⬢ %s (dyno domains -a %s lists them)", h, a.Name, a.Name)
		}
		return []string{h}, nil
	})
	return h, err
}

// ClearDomains removes every custom domain of the app, and their
// certificates, and returns those it removed.
func (a *App) ClearDomains(user string) ([]string, error) {
	return a.removeDomains(user, func(cur []string) ([]string, error) { return cur, nil })
}

// removeDomains removes the domains pick chooses from the current ones,
// with their certificates, under the home-wide lock. With none to
// remove, nothing is written.
func (a *App) removeDomains(user string, pick func(cur []string) ([]string, error)) ([]string, error) {
	lock, err := a.home.lockDomains(unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	var gone []string
	written, err := a.Ledger.Append(func(s *ledger.State) ([]ledger.Record, error) {
		var err error
		if gone, err = pick(slices.Clone(s.Domains)); err != nil || len(gone) == 0 {
			return nil, err
		}
		next := slices.DeleteFunc(slices.Clone(s.Domains), func(d string) bool { return slices.Contains(gone, d) })
		if next == nil {
			next = []string{}
		}
		recs := []ledger.Record{{Type: ledger.TypeDomains, User: user, Domains: next}}
		certs := slices.DeleteFunc(slices.Clone(s.Certs), func(c ledger.Cert) bool { return slices.Contains(gone, c.Domain) })
		if len(certs) != len(s.Certs) {
			if certs == nil {
				certs = []ledger.Cert{}
			}
			recs = append(recs, ledger.Record{Type: ledger.TypeCerts, User: user, Certs: certs})
		}
		return recs, nil
	})
	if err != nil {
		return nil, err
	}
	if len(written) > 1 {
		a.removeUnusedCertFiles()
	}
	return gone, nil
}

// CheckDefaultHost refuses a new app name whose default hostname,
// NAME.DOMAIN, another app has as a custom domain: the router would
// send its requests there (a custom domain wins over a default
// hostname).
func (h Home) CheckDefaultHost(name, domain string) error {
	host := DefaultHost(name, domain)
	other, _, err := h.holder(name, host, domain)
	if err != nil || other == "" {
		return err
	}
	return fmt.Errorf("%s is a custom domain of ⬢ %s; pick another name, or remove it there first (dyno domains:remove %s -a %s)", host, other, host, other)
}

// DomainTimes says when the app was created and when each of its
// current custom domains was added: the time of the record since which
// the domain has been on the app without a break. It reads the whole
// ledger, which only listings need.
func (a *App) DomainTimes() (created time.Time, added map[string]time.Time, err error) {
	f, err := os.Open(a.Ledger.Path())
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("read %s: %w", a.Ledger.Path(), err)
	}
	defer f.Close()
	recs, err := ledger.ReadAll(f)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("read %s: %w", a.Ledger.Path(), err)
	}
	if len(recs) > 0 {
		created = recs[0].Time
	}
	added = map[string]time.Time{}
	for _, r := range recs {
		if r.Type != ledger.TypeDomains {
			continue
		}
		next := make(map[string]time.Time, len(r.Domains))
		for _, d := range r.Domains {
			if t, ok := added[d]; ok {
				next[d] = t
			} else {
				next[d] = r.Time
			}
		}
		added = next
	}
	return created, added, nil
}
