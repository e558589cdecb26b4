// Package project works out what a project folder asks to run: its
// Procfile, its environment from .env files and the formation, turned
// into a list of dynos with their commands, ports and environments.
package project

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/dyno-run/dyno/slug"
)

const (
	defaultPort = 5000
	maxPort     = 65535
)

// Options say where to find a project and how much of it to run.
type Options struct {
	Procfile         string   // path; "" means "Procfile" (relative to the current directory)
	ProcfileOptional bool     // a missing Procfile is fine (for dyno run); Project.Procfile is nil then
	EnvFiles         []string // nil means ".env" in the Procfile's folder, if it exists
	Formation        string   // e.g. "web=2,worker=1" or "all=2"; types not named get all=N, else 0; "" runs one of each
	Port             int      // base port; 0 means unset
	Only             []string // process types to run, all of them if empty
	Environ          []string // the inherited environment, as os.Environ returns it

	// OnSkip is called for each line of the Procfile or an env file
	// that is skipped because it is not in the file's form (Foreman
	// skips such lines too), in file order, the Procfile first. It is
	// called before Load returns, even when Load fails, so that a
	// skipped line is never silent: dyno start and run print a warning
	// for each, dyno check lists them. Nil ignores them.
	OnSkip func(slug.SkippedLine)
}

// A Project is the desired state of a project folder.
type Project struct {
	Procfile  *slug.Procfile // nil when the Procfile was optional and missing
	Dir       string         // absolute folder of the Procfile: the working directory of every process
	Env       []string       // inherited environment overlaid with the .env files, KEY=VALUE sorted by key
	BasePort  int
	Formation Formation // a count for every Procfile type; 0 for types not selected
	Dynos     []Dyno    // in Procfile order, then instance order
}

// A Dyno is one process to run.
type Dyno struct {
	Name     string // "web.1"
	Type     string // "web"
	Instance int    // 1-based
	Command  string
	Port     int
	Env      []string // Project.Env plus PORT, DYNO and PS
}

// Load reads the project described by opts.
func Load(opts Options) (*Project, error) {
	procfilePath := opts.Procfile
	if procfilePath == "" {
		procfilePath = "Procfile"
	}
	onSkip := opts.OnSkip
	if onSkip == nil {
		onSkip = func(slug.SkippedLine) {}
	}
	// Both kinds of file are read before either can fail the load, so
	// that every line skipped in them is reported.
	procfile, procfileErr := slug.ReadProcfile(procfilePath)
	if procfileErr != nil && opts.ProcfileOptional && errors.Is(procfileErr, fs.ErrNotExist) {
		procfileErr = nil
	}
	var pe *slug.ProcfileError
	switch {
	case errors.As(procfileErr, &pe):
		reportSkipped(pe.Skipped, onSkip)
	case procfile != nil:
		reportSkipped(procfile.Skipped, onSkip)
	}
	envFiles, envErr := readEnvFiles(opts.EnvFiles, filepath.Dir(procfilePath), onSkip)
	if procfileErr != nil {
		return nil, procfileErr
	}
	if envErr != nil {
		return nil, envErr
	}
	dir, err := filepath.Abs(filepath.Dir(procfilePath))
	if err != nil {
		return nil, fmt.Errorf("finding the folder of %s: %w", procfilePath, err)
	}
	vars := environMap(opts.Environ)
	for _, f := range envFiles {
		maps.Copy(vars, f.vars)
	}
	basePort, err := choosePort(opts.Port, envFiles, opts.Environ)
	if err != nil {
		return nil, err
	}

	p := &Project{
		Procfile: procfile,
		Dir:      dir,
		Env:      render(vars),
		BasePort: basePort,
	}
	if procfile == nil {
		if len(opts.Only) > 0 {
			return nil, fmt.Errorf("cannot run %s: no Procfile at %s", strings.Join(opts.Only, ", "), procfilePath)
		}
		return p, nil
	}

	types := procfile.Names()
	p.Formation, err = ParseFormation(opts.Formation, types, opts.Only)
	if err != nil {
		return nil, err
	}
	for _, name := range opts.Only {
		if procfile.Index(name) < 0 {
			return nil, fmt.Errorf("unknown process type %q; %s declares %s",
				name, procfilePath, strings.Join(types, ", "))
		}
	}
	selected := types
	if len(opts.Only) > 0 {
		selected = slices.DeleteFunc(slices.Clone(types), func(t string) bool { return !slices.Contains(opts.Only, t) })
	}
	if !p.Formation.runsAny() {
		hint := ""
		if len(opts.Only) == 0 {
			hint = NotNamedHint(opts.Formation)
		}
		return nil, fmt.Errorf("formation runs no processes: %s; give at least one type a count above 0, as in -m %s=1%s",
			p.Formation.format(selected), selected[0], hint)
	}

	for i, t := range procfile.Types {
		count := p.Formation[t.Name]
		if count == 0 {
			continue
		}
		// Check the last instance before building any, so that a huge
		// count fails at once instead of after allocating its dynos.
		if first := firstInstanceAbove(maxPort, basePort, i); count >= first {
			return nil, fmt.Errorf("port %d for %s.%d is above %d; use a lower base port (-p) or fewer instances",
				Port(basePort, i, first), t.Name, first, maxPort)
		}
		for n := 1; n <= count; n++ {
			name := t.Name + "." + strconv.Itoa(n)
			port := Port(basePort, i, n)
			p.Dynos = append(p.Dynos, Dyno{
				Name:     name,
				Type:     t.Name,
				Instance: n,
				Command:  t.Command,
				Port:     port,
				Env:      dynoEnv(p.Env, port, name),
			})
		}
	}
	return p, nil
}

func reportSkipped(lines []slug.SkippedLine, onSkip func(slug.SkippedLine)) {
	for _, l := range lines {
		onSkip(l)
	}
}

// firstInstanceAbove returns the first instance of the type at typeIndex
// whose port is above limit.
func firstInstanceAbove(limit, base, typeIndex int) int {
	return max(1, limit+1-(base+100*typeIndex)+1)
}

// OneOffEnv returns the environment of a one-off process called name
// (dyno run uses "run.1"), which listens on the base port.
func (p *Project) OneOffEnv(name string) []string {
	return dynoEnv(p.Env, p.BasePort, name)
}

// dynoEnv returns env with PORT, DYNO and PS set for a process, replacing
// any inherited values: a PORT left over from the parent would make every
// web process try to bind the same port.
func dynoEnv(env []string, port int, name string) []string {
	return withVars(env, "PORT="+strconv.Itoa(port), "DYNO="+name, "PS="+name)
}

// withVars returns env with the KEY=VALUE pairs in set added or replacing
// entries with the same key, sorted by key.
func withVars(env []string, set ...string) []string {
	replaced := make(map[string]bool, len(set))
	for _, kv := range set {
		replaced[envKey(kv)] = true
	}
	out := make([]string, 0, len(env)+len(set))
	for _, kv := range env {
		if !replaced[envKey(kv)] {
			out = append(out, kv)
		}
	}
	out = append(out, set...)
	slices.SortStableFunc(out, func(a, b string) int { return cmp.Compare(envKey(a), envKey(b)) })
	return out
}

func envKey(kv string) string {
	key, _, _ := strings.Cut(kv, "=")
	return key
}

// environMap turns an os.Environ-style list into a map; for a key given
// twice the later entry wins, as it does for getenv in most C libraries.
func environMap(environ []string) map[string]string {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		key, value, ok := strings.Cut(kv, "=")
		if !ok || key == "" {
			continue
		}
		vars[key] = value
	}
	return vars
}

// render turns vars into KEY=VALUE pairs sorted by key, so that the
// environment is the same from run to run.
func render(vars map[string]string) []string {
	env := make([]string, 0, len(vars))
	for _, key := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, key+"="+vars[key])
	}
	return env
}

// choosePort picks the base port as Foreman does: the -p flag, else PORT
// from the .env files (the last file setting it wins), else PORT from the
// inherited environment, else 5000. An empty PORT counts as unset.
func choosePort(flag int, envFiles []envFile, environ []string) (int, error) {
	if flag != 0 {
		if flag < 1 || flag > maxPort {
			return 0, fmt.Errorf("invalid port %d given with -p; want a number from 1 to %d", flag, maxPort)
		}
		return flag, nil
	}
	for _, f := range slices.Backward(envFiles) {
		if value := f.vars["PORT"]; value != "" {
			return parsePort(value, f.path)
		}
	}
	if value := environMap(environ)["PORT"]; value != "" {
		return parsePort(value, "the environment")
	}
	return defaultPort, nil
}

func parsePort(value, source string) (int, error) {
	port, err := strconv.Atoi(value)
	if err != nil || port < 1 || port > maxPort {
		return 0, fmt.Errorf("invalid PORT %q in %s; want a number from 1 to %d", value, source, maxPort)
	}
	return port, nil
}
