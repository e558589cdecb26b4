package gitpush

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	a   = "1111111111111111111111111111111111111111"
	b   = "2222222222222222222222222222222222222222"
	nul = "0000000000000000000000000000000000000000"
)

func TestPlanPush(t *testing.T) {
	for _, tc := range []struct {
		name    string
		updates []Update
		build   string // the ref that builds, "" for none
		refused string // a part of the refusal, "" for none
	}{
		{"main", []Update{{a, b, "refs/heads/main"}}, "refs/heads/main", ""},
		{"master created", []Update{{nul, b, "refs/heads/master"}}, "refs/heads/master", ""},
		{"another branch", []Update{{nul, b, "refs/heads/feature"}}, "", "git push dyno feature:main"},
		{"main beside another branch", []Update{{a, b, "refs/heads/main"}, {nul, b, "refs/heads/x"}}, "", "non-main branch"},
		{"main and master", []Update{{a, b, "refs/heads/main"}, {nul, b, "refs/heads/master"}}, "", "not both"},
		{"main deleted", []Update{{a, nul, "refs/heads/main"}}, "", "Deleting main"},
		{"a tag", []Update{{nul, b, "refs/tags/v1"}}, "", ""},
		{"main and a tag", []Update{{nul, b, "refs/tags/v1"}, {a, b, "refs/heads/main"}}, "refs/heads/main", ""},
		{"notes", []Update{{nul, b, "refs/notes/commits"}}, "", "refs/notes/commits"},
		{"another branch deleted", []Update{{a, nul, "refs/heads/old"}}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := PlanPush(tc.updates, "dyno")
			got := ""
			if p.Build != nil {
				got = p.Build.Ref
			}
			if got != tc.build {
				t.Errorf("builds %q, want %q", got, tc.build)
			}
			refusal := strings.Join(p.Refused, "\n")
			if (tc.refused == "") != (refusal == "") || !strings.Contains(refusal, tc.refused) {
				t.Errorf("refused %q, want %q", refusal, tc.refused)
			}
		})
	}
}

func TestReadUpdates(t *testing.T) {
	us, err := ReadUpdates(strings.NewReader(a + " " + b + " refs/heads/main\n" + nul + " " + a + " refs/tags/v1\n"))
	if err != nil || len(us) != 2 || us[0].Ref != "refs/heads/main" || !us[1].Creates() || us[0].Deletes() {
		t.Fatalf("ReadUpdates = %+v, %v", us, err)
	}
	for _, bad := range []string{"x y z\n", a + " " + b + "\n", a + " zz refs/heads/main\n"} {
		if _, err := ReadUpdates(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadUpdates(%q) took it", bad)
		}
	}
}

func TestParseSSHCommand(t *testing.T) {
	for in, want := range map[string]SSHCommand{
		"git-receive-pack 'web-app.git'":  {"git-receive-pack", "web-app"},
		"git-receive-pack '/web-app.git'": {"git-receive-pack", "web-app"},
		"git-upload-pack '~/web-app'":     {"git-upload-pack", "web-app"},
		"git receive-pack 'web-app.git'":  {"git-receive-pack", "web-app"},
		"git-receive-pack web-app.git":    {"git-receive-pack", "web-app"},
	} {
		got, err := ParseSSHCommand(in)
		if err != nil || got != want {
			t.Errorf("ParseSSHCommand(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "id", "bash -i", "git-upload-archive 'a.git'", "git-receive-pack '../etc.git'",
		"git-receive-pack 'a/b.git'", "git-receive-pack 'a.git", "git-receive-pack a;id", "scp -t /"} {
		if got, err := ParseSSHCommand(bad); err == nil {
			t.Errorf("ParseSSHCommand(%q) = %+v, took it", bad, got)
		}
	}
}

// A real key made by ssh-keygen parses, with ssh-keygen's fingerprint.
func TestParseKeyMatchesSSHKeygen(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("no ssh-keygen: install openssh-client")
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "k")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ann@laptop", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, _ := os.ReadFile(key + ".pub")
	k, err := ParseKey(string(pub))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ssh-keygen", "-l", "-f", key+".pub").Output()
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(string(out)); len(f) < 2 || f[1] != k.Fingerprint() || k.Comment != "ann@laptop" {
		t.Errorf("fingerprint %s, comment %q; ssh-keygen says %s", k.Fingerprint(), k.Comment, out)
	}
	priv, _ := os.ReadFile(key)
	if _, err := ParseKey(string(priv)); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Errorf("a private key: %v", err)
	}
	for _, bad := range []string{"", "ssh-ed25519", "ssh-ed25519 !!!", "ssh-rsa " + k.Blob, "ssh-ed25519 AAAA", "ssh-ed25519 " + k.Blob + " a\"b"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) took it", bad)
		}
	}
}

// keys:add and keys:remove change dyno's lines only: the user's own
// keys and comments stay as they were, where they were.
func TestKeysKeepTheUsersLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".ssh", "authorized_keys")
	own := "# my laptop\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOwn0000000000000000000000000000000000000000 me@laptop\n"
	os.MkdirAll(filepath.Dir(path), 0o700)
	os.WriteFile(path, []byte(own), 0o600)
	ks := Keys{Path: path, Command: func(k Key) string { return "exec dyno git-shell --key " + k.Fingerprint() }}
	k1, _ := ParseKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHB5IKQ7HkdBf7Rw9plFSl4q3m55EUPy4kaey+VHnbcF ann@laptop")
	if err := ks.Add(k1); err != nil {
		t.Fatal(err)
	}
	if err := ks.Add(k1); err == nil || !strings.Contains(err.Error(), "already added") {
		t.Errorf("the same key twice: %v", err)
	}
	keys, err := ks.List()
	if err != nil || len(keys) != 1 || keys[0].Comment != "ann@laptop" {
		t.Fatalf("List = %+v, %v", keys, err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), own) || !strings.Contains(string(b), `restrict,command="exec dyno git-shell --key `+k1.Fingerprint()+`" ssh-ed25519`) {
		t.Errorf("the file:\n%s", b)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", info.Mode())
	}
	if _, err := ks.Remove("me@laptop"); err == nil {
		t.Error("keys:remove took the user's own key")
	}
	if rm, err := ks.Remove("ann@laptop"); err != nil || len(rm) != 1 {
		t.Fatalf("Remove = %v, %v", rm, err)
	}
	if b, _ := os.ReadFile(path); string(b) != own {
		t.Errorf("after the removal:\n%s", b)
	}
}

// Ensure makes a bare repository whose hook runs dyno, and rewrites the
// hook when dyno moved.
func TestEnsure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "apps", "web", "repo.git")
	h := Hook{Dyno: "/opt/dyno's/dyno", Home: "/var/lib/dyno", App: "web"}
	if err := Ensure(t.Context(), dir, h); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "--git-dir", dir, "config", "receive.fsckObjects").Output()
	if err != nil || strings.TrimSpace(string(out)) != "true" {
		t.Errorf("receive.fsckObjects = %q, %v", out, err)
	}
	head, _ := os.ReadFile(filepath.Join(dir, "HEAD"))
	if string(head) != "ref: refs/heads/main\n" {
		t.Errorf("HEAD = %q", head)
	}
	h.Dyno = "/usr/local/bin/dyno"
	if err := Ensure(t.Context(), dir, h); err != nil {
		t.Fatal(err)
	}
	hook, _ := os.ReadFile(filepath.Join(dir, "hooks", "pre-receive"))
	if !strings.Contains(string(hook), "exec '/usr/local/bin/dyno' git-hook pre-receive --app 'web'") {
		t.Errorf("hook:\n%s", hook)
	}
	// The script quotes what it names: run by sh, it says what it runs.
	cmd := exec.Command("sh", "-n", filepath.Join(dir, "hooks", "pre-receive"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s", err, out)
	}
}
