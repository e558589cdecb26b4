package gitpush

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dyno-run/dyno/ledger/app"
)

// An SSHCommand is what a git client asked sshd to run: git push runs
// git-receive-pack on the repository's path, git fetch and clone run
// git-upload-pack; sshd hands the forced command that text in
// SSH_ORIGINAL_COMMAND (sshd(8), command="").
type SSHCommand struct {
	Service string // git-receive-pack or git-upload-pack
	App     string
}

// ParseSSHCommand reads SSH_ORIGINAL_COMMAND. Git writes the path in
// single quotes, each ' in it as '\” (git's sq_quote); the path may
// start with / or ~/, as in dyno@host:/app.git, and .git is optional.
// Anything else (a shell, scp, git-upload-archive) is refused.
func ParseSSHCommand(s string) (SSHCommand, error) {
	if s == "" {
		return SSHCommand{}, errors.New("this key may only git push and fetch apps; there is no shell (git push dyno@HOST:APP.git main)")
	}
	service, arg, ok := strings.Cut(s, " ")
	// git-receive-pack and "git receive-pack" are both sent by clients.
	if service == "git" {
		service, arg, ok = strings.Cut(arg, " ")
		service = "git-" + service
	}
	if !ok || (service != "git-receive-pack" && service != "git-upload-pack") {
		return SSHCommand{}, fmt.Errorf("this key may only git push and fetch apps, not run %q", truncate(s, 80))
	}
	path, err := unquote(strings.TrimSpace(arg))
	if err != nil {
		return SSHCommand{}, err
	}
	path = strings.TrimPrefix(path, "~/")
	path = strings.TrimPrefix(path, "/")
	path = strings.TrimSuffix(path, "/")
	name := strings.TrimSuffix(path, ".git")
	if name == "" || strings.Contains(name, "/") {
		return SSHCommand{}, fmt.Errorf("%q is not an app's repository: push to APP.git (git push dyno@HOST:APP.git main)", truncate(path, 80))
	}
	if err := app.ValidName(name); err != nil {
		return SSHCommand{}, err
	}
	return SSHCommand{Service: service, App: name}, nil
}

// unquote undoes sh single quoting; an unquoted word is taken as it is.
func unquote(s string) (string, error) {
	if !strings.HasPrefix(s, "'") {
		if strings.ContainsAny(s, " '\"\\$`") {
			return "", fmt.Errorf("the repository path %q is not one word", truncate(s, 80))
		}
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '\'' {
			if s[i] == '\\' && i+1 < len(s) && s[i+1] == '\'' {
				b.WriteByte('\'')
				i += 2
				continue
			}
			return "", fmt.Errorf("the repository path %s is not quoted as git quotes it", truncate(s, 80))
		}
		end := strings.IndexByte(s[i+1:], '\'')
		if end < 0 {
			return "", fmt.Errorf("the repository path %s has no closing quote", truncate(s, 80))
		}
		b.WriteString(s[i+1 : i+1+end])
		i += end + 2
	}
	return b.String(), nil
}
