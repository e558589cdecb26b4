package main

import (
	"regexp"
	"testing"
)

// redis:cli and redis:info through the binary, as uid 65534, with the
// real redis-server: commands from a pipe run as the add-on's user,
// confined to its prefix, and redis:info has Heroku's shape.
func TestRedisToolsCommands(t *testing.T) {
	t.Parallel()
	needAddonServers(t)
	e := newIsolatedEnv(t, nil)
	t.Cleanup(func() { stopRedisOf(t, e.home) })
	e.must(t, "apps:create", "demo")
	e.failLine(t, "⬢ demo has no heroku-redis add-on; dyno addons:create heroku-redis -a demo makes one", "redis:cli", "-a", "demo")
	out := e.must(t, "addons:create", "heroku-redis", "-a", "demo")
	m := regexp.MustCompile(`Created (redis-[a-z]+-[0-9]{5}) as REDIS_URL\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("addons:create:\n%s", out)
	}
	name := m[1]

	out, st := e.withStdin("PING\nSET "+name+":k v\nGET "+name+":k\nGET other:k\n", "redis:cli", "-a", "demo")
	if st != 0 || !regexp.MustCompile(`^Connecting to `+name+` \(REDIS_URL\):\nPONG\nOK\nv\n.*NOPERM`).MatchString(out) {
		t.Errorf("redis:cli from a pipe: exit %d:\n%s", st, out)
	}
	e.failLine(t, "⬢ demo has no heroku-redis add-on CACHE; give one of REDIS", "redis:cli", "CACHE", "-a", "demo")

	out = e.must(t, "redis:info", "REDIS_URL", "-a", "demo")
	for _, re := range []string{`^=== ` + name + ` \(REDIS_URL\)\n`, `\nPlan: +Mini\n`, `\nStatus: +available\n`,
		`\nCreated: +\d{4}-\d\d-\d\d \d\d:\d\d UTC\n`, `\nVersion: +[0-9]+\.[0-9]+\.[0-9]+\n`, `\nMaxmemory: +[a-z-]+\n`,
		`\nPersistence: +AOF\n`, `\nKeyspace Notifications: +Disabled\n`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("redis:info does not match %s:\n%s", re, out)
		}
	}
	if got := e.must(t, "redis", "-a", "demo"); got != out {
		t.Errorf("redis (the topic) is not redis:info:\n%s", got)
	}
}
