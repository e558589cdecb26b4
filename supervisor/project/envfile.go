package project

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/joho/godotenv"
)

// An envFile is one .env file that was read.
type envFile struct {
	path string
	vars map[string]string
}

// An EnvFileError reports a .env file that godotenv could not parse.
type EnvFileError struct {
	Path string
	Line int // 0 when the line could not be found
	Err  error
}

func (e *EnvFileError) Error() string {
	if e.Line == 0 {
		return e.Path + ": " + e.Err.Error()
	}
	// With a line number the quoted rest of the file that godotenv
	// appends only makes the message long.
	msg, _, _ := strings.Cut(e.Err.Error(), nearMarker)
	return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, msg)
}

func (e *EnvFileError) Unwrap() error { return e.Err }

// readEnvFiles reads the named .env files in order. With names nil it
// reads ".env" in dir if there is one: a missing default is fine, a
// missing named file is an error.
func readEnvFiles(names []string, dir string) ([]envFile, error) {
	if names == nil {
		path := filepath.Join(dir, ".env")
		f, err := readEnvFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []envFile{f}, nil
	}
	files := make([]envFile, 0, len(names))
	for _, path := range names {
		f, err := readEnvFile(path)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

func readEnvFile(path string) (envFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return envFile{}, fmt.Errorf("reading env file: %w", err)
	}
	vars, err := parseEnv(path, data)
	if err != nil {
		return envFile{}, err
	}
	return envFile{path: path, vars: vars}, nil
}

// parseEnv parses the content of the env file at path.
func parseEnv(path string, data []byte) (map[string]string, error) {
	vars, err := godotenv.UnmarshalBytes(data)
	if err != nil {
		return nil, &EnvFileError{Path: path, Line: errorLine(data, err), Err: err}
	}
	// godotenv reads a line without "=" as a value with an empty name;
	// no process can be given such a variable.
	delete(vars, "")
	return vars, nil
}

// Text godotenv v1.5 puts in its parse errors; errorLine depends on it.
const (
	nearMarker        = " near "
	unterminatedQuote = "unterminated quoted value "
)

// errorLine finds the line of data that godotenv's parse error err is
// about, or returns 0. godotenv reports no line numbers, but quotes the
// text where it stopped: the rest of the file after an unexpected
// character in a name, or the rest of the line after an unterminated
// quote. Finding that text in the file gives the line.
func errorLine(data []byte, err error) int {
	// godotenv parses with CRLF turned into LF, so its quotes match that.
	text := string(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")))
	msg := err.Error()
	var fragment string
	if _, quoted, ok := strings.Cut(msg, nearMarker); ok {
		s, err := strconv.Unquote(quoted)
		if err != nil {
			return 0
		}
		fragment = s
	} else if s, ok := strings.CutPrefix(msg, unterminatedQuote); ok {
		fragment = s
	}
	if fragment == "" {
		return 0
	}
	// The first fragment is the tail of the file, so its last occurrence
	// is the one; the second starts at a quote that nothing after it
	// closes, so a later copy could only be an escaped quote.
	at := strings.LastIndex(text, fragment)
	if at < 0 {
		return 0
	}
	return 1 + strings.Count(text[:at], "\n")
}
