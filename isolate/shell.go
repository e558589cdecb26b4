package isolate

import "strings"

// ShellArgv returns the argv that runs a Procfile command through
// /bin/sh. When the command is one simple command the shell is told to
// exec it, so the app replaces the shell instead of running under it:
// Debian's dash, unlike bash, does not exec the last command of `sh -c`
// by itself, and a resident shell per dyno would cost a process and sit
// between init and the app. Leading NAME=value assignments stay in front
// of exec, where POSIX sh applies them to the command (dash and bash
// both export them to it).
func ShellArgv(command string) []string {
	if simpleCommand(command) {
		command = insertExec(command)
	}
	return []string{"/bin/sh", "-c", command}
}

// simpleCommand reports whether command is a single simple command: no
// unquoted list, pipeline or grouping operators, no leading reserved word.
// It errs on the side of "no": a command it rejects still runs, only
// under a resident shell.
func simpleCommand(command string) bool {
	s := strings.TrimSpace(command)
	if s == "" {
		return false
	}
	first := s
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		first = s[:i]
	}
	switch first {
	case "if", "then", "else", "elif", "fi", "do", "done", "case", "esac",
		"while", "until", "for", "in", "{", "}", "!", "function", "select",
		"exec", "[[", "time", "coproc",
		// Builtins that are not programs: "exec exit 0" would fail.
		":", ".", "source", "break", "continue", "eval", "exit", "export",
		"readonly", "return", "set", "shift", "times", "trap", "unset", "cd",
		"wait", "read", "ulimit", "umask", "alias", "unalias", "command",
		"local", "getopts", "hash", "type", "jobs", "fg", "bg":
		return false
	}
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			}
		case c == '\\':
			if i+1 < len(s) && s[i+1] == '\n' {
				return false
			}
			i++
		case quote == '"':
			if c == '"' {
				quote = 0
			} else if c == '`' {
				return false
			}
		case c == '\'' || c == '"':
			quote = c
		case strings.IndexByte(";&|()<>`\n#", c) >= 0:
			// Redirections (<, >) are fine in a simple command, but
			// "exec >file" alone changes the meaning (it redirects the
			// shell), so treat any of them as "not simple" to stay safe.
			return false
		case c == '$' && i+1 < len(s) && s[i+1] == '(':
			// $(...) may hold anything; leave it to the shell.
			return false
		}
	}
	return quote == 0
}

// insertExec puts "exec " after any leading NAME=value words.
func insertExec(command string) string {
	s := strings.TrimLeft(command, " \t")
	rest := s
	prefix := ""
	for {
		word, after, _ := strings.Cut(rest, " ")
		if looksLikeAssignment(word) && !isAssignment(word) {
			// A quoted value may hold spaces the split cannot see:
			// leave the command to the shell as written.
			return command
		}
		if !isAssignment(word) || after == "" {
			break
		}
		prefix += word + " "
		rest = strings.TrimLeft(after, " \t")
	}
	if isAssignment(strings.TrimSpace(rest)) {
		// Only assignments: nothing to exec.
		return command
	}
	return prefix + "exec " + rest
}

// looksLikeAssignment reports whether word starts with NAME=.
func looksLikeAssignment(word string) bool {
	name, _, ok := strings.Cut(word, "=")
	return ok && ValidEnvName(name)
}

// isAssignment reports whether word is NAME=value with a plain value (no
// quotes, which could hide spaces from the split above).
func isAssignment(word string) bool {
	name, value, ok := strings.Cut(word, "=")
	return ok && ValidEnvName(name) && !strings.ContainsAny(value, `'"\`)
}

// ValidEnvName reports whether name is a shell variable name: letters,
// digits and _, not starting with a digit.
func ValidEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// ProfileArgv returns the argv that runs a release's command as Heroku
// does: bash sources /app/.profile.d/*.sh in lexical order, then
// /app/.profile, and then runs the command (exec'd when it is a simple
// command, so no shell stays resident). The config vars are already in
// the environment, so a profile script can defer to them with
// ${VAR:-default}.
func ProfileArgv(command string) []string {
	if simpleCommand(command) {
		command = insertExec(command)
	}
	return []string{"/bin/bash", "-c", Profile + "\n" + command}
}

// Profile is the bash that runs before a release's command: it sources
// /app/.profile.d/*.sh in lexical order, then /app/.profile.
const Profile = `for f in /app/.profile.d/*.sh; do if [ -r "$f" ]; then . "$f"; fi; done; unset f; if [ -r /app/.profile ]; then . /app/.profile; fi`
