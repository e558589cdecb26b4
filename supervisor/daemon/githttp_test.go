package daemon

import "testing"

func TestGitRoute(t *testing.T) {
	for p, want := range map[string][2]string{
		"/web-app.git/info/refs":        {"web-app", "/info/refs"},
		"/web-app.git/git-receive-pack": {"web-app", "/git-receive-pack"},
		"/web-app.git":                  {"web-app", "/"},
	} {
		name, rest, ok := gitRoute(p)
		if !ok || name != want[0] || rest != want[1] {
			t.Errorf("gitRoute(%q) = %q, %q, %v", p, name, rest, ok)
		}
	}
	for _, p := range []string{"/apps/web-app", "/../x.git/info/refs", "/WEB.git/info/refs", "/.git/info/refs", "/a.gitx/info/refs"} {
		if name, _, ok := gitRoute(p); ok {
			t.Errorf("gitRoute(%q) = %q, took it", p, name)
		}
	}
}
