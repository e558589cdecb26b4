package addons

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Settings are dyno.toml's [addons.SERVICE] tables: an operator points a
// service at a server of their own instead of the one dyno runs.
//
//	[addons.postgresql]
//	url = "postgres://dyno:PASSWORD@db.internal:5432/postgres?sslmode=require"
//
//	[addons.redis]
//	url = "redis://default:PASSWORD@cache.internal:6379"
//
// The URL's user must be able to make what an add-on is there (a
// PostgreSQL role with CREATEROLE and CREATEDB; a Redis user allowed
// ACL), and the add-ons' URLs name the same host and port. dyno runs no
// server for such a service. SERVICE is the service's alias or name
// (postgresql or heroku-postgresql).
type Settings map[string]ServiceSettings // by the service's alias

// ServiceSettings are one service's.
type ServiceSettings struct {
	// URL is the server the service's add-ons are made in, with
	// credentials that may make them; nil: dyno's own server.
	URL *url.URL
}

// LoadSettings reads the [addons] tables of the dyno.toml at path; a
// missing file or table is no setting. An unknown service or key, or a
// URL that is not one the service takes, is an error naming the file,
// the key and the fix.
func LoadSettings(path string) (Settings, error) {
	var doc struct {
		Addons map[string]map[string]any `toml:"addons"`
	}
	_, err := toml.DecodeFile(path, &doc)
	if errors.Is(err, fs.ErrNotExist) {
		return Settings{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := Settings{}
	// In a fixed order, so that the same file gives the same error.
	names := make([]string, 0, len(doc.Addons))
	for name := range doc.Addons {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		i := slices.IndexFunc(Services(), func(s Service) bool { return s.Alias == name || s.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("%s: [addons.%s]: no such service; dyno provides %s", path, name, serviceAliases())
		}
		s := Services()[i]
		if _, ok := out[s.Alias]; ok {
			return nil, fmt.Errorf("%s: [addons.%s]: %s is set twice (as %s and %s); keep one table", path, name, s.Name, s.Alias, s.Name)
		}
		var ss ServiceSettings
		for k, v := range doc.Addons[name] {
			if k != "url" {
				return nil, fmt.Errorf("%s: addons.%s.%s: unknown key; a service takes url", path, name, k)
			}
			str, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("%s: addons.%s.url: not a string; write url = \"%s\"", path, name, s.exampleURL())
			}
			u, err := url.Parse(str)
			if err == nil {
				err = s.checkURL(u)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: addons.%s.url: %v; write it like url = \"%s\"", path, name, err, s.exampleURL())
			}
			ss.URL = u
		}
		out[s.Alias] = ss
	}
	return out, nil
}

// serviceAliases lists the services' aliases, for messages.
func serviceAliases() string {
	var s string
	for i, svc := range Services() {
		if i > 0 {
			s += ", "
		}
		s += svc.Alias
	}
	return s
}

// exampleURL is an example of the URL the service's setting takes.
func (s Service) exampleURL() string {
	if s.External == nil {
		return ""
	}
	return s.External.Example
}

// checkURL reports whether u is a URL the service's setting takes.
func (s Service) checkURL(u *url.URL) error {
	if s.External == nil {
		return fmt.Errorf("%s cannot be pointed at a server", s.Name)
	}
	if !slices.Contains(s.External.Schemes, u.Scheme) {
		return fmt.Errorf("%s is not a %s URL", redact(u), s.External.Schemes[0])
	}
	if u.Hostname() == "" || u.Port() == "" {
		return fmt.Errorf("%s names no host:port", redact(u))
	}
	if _, ok := u.User.Password(); !ok {
		return fmt.Errorf("%s has no user and password", redact(u))
	}
	return nil
}

// redact is u without its password, for messages.
func redact(u *url.URL) string { return u.Redacted() }

// checkCredsServer refuses to work on the server at addr (want: "" for
// dyno's own, else addr) while an add-on in usersDir, whose
// credentials say which server it is on ({"server": "host:port"}, none
// for dyno's own), is on another: its URL would name the wrong server,
// and destroying it would look for it in the wrong place.
func checkCredsServer(service, usersDir, want, addr string) error {
	entries, err := os.ReadDir(usersDir)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(usersDir, e.Name()))
		if err != nil {
			return fmt.Errorf("%s: credentials of %s: %w", service, name, err)
		}
		var cr struct {
			Server string `json:"server"`
		}
		if err := json.Unmarshal(b, &cr); err != nil {
			return fmt.Errorf("%s: credentials of %s: %s: %w", service, name, filepath.Join(usersDir, e.Name()), err)
		}
		if cr.Server == want {
			continue
		}
		where, now := "dyno's own server", addr
		if cr.Server != "" {
			where = cr.Server
		}
		if want == "" {
			now = "dyno's own server, which [addons." + service + "] in dyno.toml no longer points elsewhere"
		} else {
			now += ", which [addons." + service + "] in dyno.toml points at"
		}
		return fmt.Errorf("%s: %s is on %s, not %s; destroy the add-ons on %s first, or point the setting back", service, name, where, now, where)
	}
	return nil
}
