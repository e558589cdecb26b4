package project

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const threeTypeProcfile = "web: bin/server -p $PORT\nworker: bin/worker\nclock: bin/clock\n"

// writeFile writes data to name under dir and returns its path.
func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// lookup returns the value of key in env and how many times it is set.
func lookup(env []string, key string) (value string, count int) {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if k == key {
			value = v
			count++
		}
	}
	return value, count
}

func wantVar(t *testing.T, what string, env []string, key, want string) {
	t.Helper()
	got, n := lookup(env, key)
	if n != 1 || got != want {
		t.Errorf("%s: %s = %q (set %d times), want %q once", what, key, got, n, want)
	}
}

type dynoSummary struct {
	Name, Type string
	Instance   int
	Command    string
	Port       int
}

func summarize(dynos []Dyno) []dynoSummary {
	var out []dynoSummary
	for _, d := range dynos {
		out = append(out, dynoSummary{d.Name, d.Type, d.Instance, d.Command, d.Port})
	}
	return out
}

func TestLoadDefaults(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "Procfile", threeTypeProcfile)
	t.Chdir(dir)

	p, err := Load(Options{Environ: []string{"HOME=/home/app", "LANG=C"}})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	wantDir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Dir != wantDir {
		t.Errorf("Dir = %q, want %q", p.Dir, wantDir)
	}
	if p.Procfile == nil || p.Procfile.Path != "Procfile" {
		t.Fatalf("Procfile = %+v, want one read from %q", p.Procfile, "Procfile")
	}
	if want := []string{"HOME=/home/app", "LANG=C"}; !reflect.DeepEqual(p.Env, want) {
		t.Errorf("Env = %q, want %q", p.Env, want)
	}
	if p.BasePort != 5000 {
		t.Errorf("BasePort = %d, want 5000", p.BasePort)
	}
	if want := (Formation{"web": 1, "worker": 1, "clock": 1}); !reflect.DeepEqual(p.Formation, want) {
		t.Errorf("Formation = %v, want %v", p.Formation, want)
	}
	want := []dynoSummary{
		{"web.1", "web", 1, "bin/server -p $PORT", 5000},
		{"worker.1", "worker", 1, "bin/worker", 5100},
		{"clock.1", "clock", 1, "bin/clock", 5200},
	}
	if got := summarize(p.Dynos); !reflect.DeepEqual(got, want) {
		t.Errorf("Dynos = %+v, want %+v", got, want)
	}
	web := p.Dynos[0]
	wantEnv := []string{"DYNO=web.1", "HOME=/home/app", "LANG=C", "PORT=5000", "PS=web.1"}
	if !reflect.DeepEqual(web.Env, wantEnv) {
		t.Errorf("web.1 Env = %q, want %q", web.Env, wantEnv)
	}
}

func TestLoadPortsForInstances(t *testing.T) {
	dir := t.TempDir()
	procfile := writeFile(t, dir, "Procfile", threeTypeProcfile)

	p, err := Load(Options{Procfile: procfile, Formation: "web=2,worker=3,clock=1", Port: 3000})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []dynoSummary{
		{"web.1", "web", 1, "bin/server -p $PORT", 3000},
		{"web.2", "web", 2, "bin/server -p $PORT", 3001},
		{"worker.1", "worker", 1, "bin/worker", 3100},
		{"worker.2", "worker", 2, "bin/worker", 3101},
		{"worker.3", "worker", 3, "bin/worker", 3102},
		{"clock.1", "clock", 1, "bin/clock", 3200},
	}
	if got := summarize(p.Dynos); !reflect.DeepEqual(got, want) {
		t.Errorf("Dynos = %+v, want %+v", got, want)
	}
	for _, d := range p.Dynos {
		wantVar(t, d.Name, d.Env, "PORT", strconv.Itoa(d.Port))
		wantVar(t, d.Name, d.Env, "DYNO", d.Name)
		wantVar(t, d.Name, d.Env, "PS", d.Name)
	}
}

func TestLoadEnvPrecedence(t *testing.T) {
	dir := t.TempDir()
	procfile := writeFile(t, dir, "Procfile", threeTypeProcfile)
	a := writeFile(t, dir, "a.env", "FROM_A=a\nSHARED=a\nOVERRIDDEN=a\n")
	b := writeFile(t, dir, "b.env", "SHARED=b\nDYNO=from-b\n")
	environ := []string{"INHERITED=environ", "OVERRIDDEN=environ", "SHARED=environ", "PS=environ", "DYNO=environ"}

	p, err := Load(Options{Procfile: procfile, EnvFiles: []string{a, b}, Environ: environ})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// Inherited < a.env < b.env in the project environment.
	wantVar(t, "Env", p.Env, "INHERITED", "environ")
	wantVar(t, "Env", p.Env, "FROM_A", "a")
	wantVar(t, "Env", p.Env, "OVERRIDDEN", "a")
	wantVar(t, "Env", p.Env, "SHARED", "b")
	// The project environment adds nothing of its own.
	wantVar(t, "Env", p.Env, "DYNO", "from-b")
	wantVar(t, "Env", p.Env, "PS", "environ")
	if _, n := lookup(p.Env, "PORT"); n != 0 {
		t.Errorf("Env sets PORT: %q", p.Env)
	}
	if !slices.IsSorted(p.Env) {
		t.Errorf("Env is not sorted: %q", p.Env)
	}

	// PORT, DYNO and PS beat everything for a dyno.
	worker := p.Dynos[1]
	wantVar(t, "worker.1", worker.Env, "DYNO", "worker.1")
	wantVar(t, "worker.1", worker.Env, "PS", "worker.1")
	wantVar(t, "worker.1", worker.Env, "PORT", "5100")
	wantVar(t, "worker.1", worker.Env, "SHARED", "b")
	wantVar(t, "worker.1", worker.Env, "INHERITED", "environ")
}

func TestLoadDefaultEnvFile(t *testing.T) {
	dir := t.TempDir()
	procfile := writeFile(t, dir, "app/Procfile", threeTypeProcfile)
	writeFile(t, dir, "app/.env", "GREETING=hello\n")
	// A .env in the current directory is not the Procfile's.
	writeFile(t, dir, ".env", "GREETING=wrong folder\n")
	t.Chdir(dir)

	p, err := Load(Options{Procfile: procfile})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	wantVar(t, "Env", p.Env, "GREETING", "hello")
	if want := filepath.Join(dir, "app"); p.Dir != want {
		t.Errorf("Dir = %q, want %q", p.Dir, want)
	}
}

func TestLoadDefaultEnvFileMissing(t *testing.T) {
	dir := t.TempDir()
	procfile := writeFile(t, dir, "Procfile", threeTypeProcfile)
	p, err := Load(Options{Procfile: procfile, Environ: []string{"A=1"}})
	if err != nil {
		t.Fatalf("Load with no .env: %v", err)
	}
	if want := []string{"A=1"}; !reflect.DeepEqual(p.Env, want) {
		t.Errorf("Env = %q, want %q", p.Env, want)
	}
}

func TestLoadNoEnvFiles(t *testing.T) {
	dir := t.TempDir()
	procfile := writeFile(t, dir, "Procfile", threeTypeProcfile)
	writeFile(t, dir, ".env", "GREETING=hello\n")
	// An empty, non-nil list asks for no .env files at all.
	p, err := Load(Options{Procfile: procfile, EnvFiles: []string{}})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(p.Env) != 0 {
		t.Errorf("Env = %q, want empty", p.Env)
	}
}

func TestLoadMissingEnvFile(t *testing.T) {
	dir := t.TempDir()
	procfile := writeFile(t, dir, "Procfile", threeTypeProcfile)
	a := writeFile(t, dir, "a.env", "A=1\n")
	missing := filepath.Join(dir, "missing.env")

	_, err := Load(Options{Procfile: procfile, EnvFiles: []string{a, missing}})
	if err == nil {
		t.Fatal("Load with a missing -e file succeeded")
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("error %q does not name %s", err, missing)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %q does not wrap fs.ErrNotExist", err)
	}
}

func TestLoadBasePort(t *testing.T) {
	tests := []struct {
		name    string
		flag    int
		envFile []string // contents of a.env and b.env, "" for none
		environ string
		want    int
	}{
		{name: "default", want: 5000},
		{name: "environ", environ: "8000", want: 8000},
		{name: "env file beats environ", envFile: []string{"PORT=7000"}, environ: "8000", want: 7000},
		{name: "later env file wins", envFile: []string{"PORT=7000", "PORT=7100"}, environ: "8000", want: 7100},
		{name: "earlier env file when later has none", envFile: []string{"PORT=7000", "X=1"}, want: 7000},
		{name: "flag beats all", flag: 6000, envFile: []string{"PORT=7000"}, environ: "8000", want: 6000},
		{name: "empty PORT is unset", envFile: []string{"PORT="}, environ: "8000", want: 8000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			procfile := writeFile(t, dir, "Procfile", threeTypeProcfile)
			var envFiles []string
			for i, data := range tt.envFile {
				envFiles = append(envFiles, writeFile(t, dir, string(rune('a'+i))+".env", data+"\n"))
			}
			if envFiles == nil {
				envFiles = []string{}
			}
			var environ []string
			if tt.environ != "" {
				environ = []string{"PORT=" + tt.environ}
			}
			p, err := Load(Options{Procfile: procfile, Port: tt.flag, EnvFiles: envFiles, Environ: environ})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if p.BasePort != tt.want {
				t.Errorf("BasePort = %d, want %d", p.BasePort, tt.want)
			}
			if p.Dynos[0].Port != tt.want || p.Dynos[1].Port != tt.want+100 {
				t.Errorf("ports %d, %d; want %d, %d", p.Dynos[0].Port, p.Dynos[1].Port, tt.want, tt.want+100)
			}
		})
	}
}

func TestLoadBadPort(t *testing.T) {
	dir := t.TempDir()
	procfile := writeFile(t, dir, "Procfile", threeTypeProcfile)
	badEnv := writeFile(t, dir, "bad.env", "PORT=abc\n")
	zeroEnv := writeFile(t, dir, "zero.env", "PORT=0\n")
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"negative flag", Options{Port: -1},
			"invalid port -1 given with -p; want a number from 1 to 65535"},
		{"flag too big", Options{Port: 65536},
			"invalid port 65536 given with -p; want a number from 1 to 65535"},
		{"env file not a number", Options{EnvFiles: []string{badEnv}},
			`invalid PORT "abc" in ` + badEnv + "; want a number from 1 to 65535"},
		{"env file zero", Options{EnvFiles: []string{zeroEnv}},
			`invalid PORT "0" in ` + zeroEnv + "; want a number from 1 to 65535"},
		{"environ too big", Options{Environ: []string{"PORT=70000"}},
			`invalid PORT "70000" in the environment; want a number from 1 to 65535`},
		{"environ spaces", Options{Environ: []string{"PORT= 80"}},
			`invalid PORT " 80" in the environment; want a number from 1 to 65535`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Procfile = procfile
			_, err := Load(tt.opts)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLoadPortOverflow(t *testing.T) {
	dir := t.TempDir()
	procfile := writeFile(t, dir, "Procfile", threeTypeProcfile)
	tests := []struct {
		name      string
		port      int
		formation string
		want      string
	}{
		{"second type", 65500, "web=1,worker=1",
			"port 65600 for worker.1 is above 65535; use a lower base port (-p) or fewer instances"},
		{"instance", 65500, "web=40,all=0",
			"port 65536 for web.37 is above 65535; use a lower base port (-p) or fewer instances"},
		{"huge count fails fast", 5000, "web=9223372036854775807",
			`formation: "web=9223372036854775807" asks for 9223372036854775807 processes, over the limit of 100 of a type; ask for 100 or fewer`},
		{"over the limit", 5000, "web=101",
			`formation: "web=101" asks for 101 processes, over the limit of 100 of a type; ask for 100 or fewer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(Options{Procfile: procfile, Port: tt.port, Formation: tt.formation})
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}

	// The last port that fits is fine.
	p, err := Load(Options{Procfile: procfile, Port: 65500, Formation: "web=36,all=0"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if last := p.Dynos[len(p.Dynos)-1]; last.Name != "web.36" || last.Port != 65535 {
		t.Errorf("last dyno %s on %d, want web.36 on 65535", last.Name, last.Port)
	}
}

func TestLoadFormation(t *testing.T) {
	dir := t.TempDir()
	procfile := writeFile(t, dir, "Procfile", threeTypeProcfile)

	p, err := Load(Options{Procfile: procfile, Formation: "all=0,worker=2"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []dynoSummary{
		{"worker.1", "worker", 1, "bin/worker", 5100},
		{"worker.2", "worker", 2, "bin/worker", 5101},
	}
	if got := summarize(p.Dynos); !reflect.DeepEqual(got, want) {
		t.Errorf("Dynos = %+v, want %+v", got, want)
	}

	_, err = Load(Options{Procfile: procfile, Formation: "wrker=1"})
	wantErr := `formation: unknown process type "wrker" in "wrker=1"; the Procfile declares web, worker, clock`
	if err == nil || err.Error() != wantErr {
		t.Errorf("unknown type: error = %v, want %q", err, wantErr)
	}

	_, err = Load(Options{Procfile: procfile, Formation: "all=0"})
	wantErr = "formation runs no processes: web=0,worker=0,clock=0; give at least one type a count above 0, as in -m web=1"
	if err == nil || err.Error() != wantErr {
		t.Errorf("all=0: error = %v, want %q", err, wantErr)
	}

	// Leaving one type out leaves out the others too, and the error
	// says why.
	_, err = Load(Options{Procfile: procfile, Formation: "web=0"})
	wantErr = "formation runs no processes: web=0,worker=0,clock=0; give at least one type a count above 0, as in -m web=1 (types -m does not name run none unless all=N gives them a count)"
	if err == nil || err.Error() != wantErr {
		t.Errorf("web=0: error = %v, want %q", err, wantErr)
	}
}

// A formation names what runs, as Foreman reads -m: the types it does
// not name run none unless all=N, and ports keep the Procfile's numbering.
func TestLoadFormationNamesWhatRuns(t *testing.T) {
	dir := t.TempDir()
	procfile := writeFile(t, dir, "Procfile", threeTypeProcfile)
	tests := []struct {
		formation string
		want      []dynoSummary
	}{
		{"web=2", []dynoSummary{
			{"web.1", "web", 1, "bin/server -p $PORT", 5000},
			{"web.2", "web", 2, "bin/server -p $PORT", 5001},
		}},
		{"clock=1", []dynoSummary{{"clock.1", "clock", 1, "bin/clock", 5200}}},
		{"web=0,all=1", []dynoSummary{
			{"worker.1", "worker", 1, "bin/worker", 5100},
			{"clock.1", "clock", 1, "bin/clock", 5200},
		}},
		{"", []dynoSummary{
			{"web.1", "web", 1, "bin/server -p $PORT", 5000},
			{"worker.1", "worker", 1, "bin/worker", 5100},
			{"clock.1", "clock", 1, "bin/clock", 5200},
		}},
	}
	for _, tt := range tests {
		p, err := Load(Options{Procfile: procfile, Formation: tt.formation})
		if err != nil {
			t.Errorf("-m %q: %v", tt.formation, err)
			continue
		}
		if got := summarize(p.Dynos); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("-m %q: Dynos = %+v, want %+v", tt.formation, got, tt.want)
		}
	}
}

func TestLoadOnly(t *testing.T) {
	dir := t.TempDir()
	procfile := writeFile(t, dir, "Procfile", threeTypeProcfile)

	p, err := Load(Options{Procfile: procfile, Only: []string{"clock", "worker"}, Formation: "worker=2,web=3"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// Procfile order, and the ports of the Procfile's indices.
	want := []dynoSummary{
		{"worker.1", "worker", 1, "bin/worker", 5100},
		{"worker.2", "worker", 2, "bin/worker", 5101},
		{"clock.1", "clock", 1, "bin/clock", 5200},
	}
	if got := summarize(p.Dynos); !reflect.DeepEqual(got, want) {
		t.Errorf("Dynos = %+v, want %+v", got, want)
	}
	if wantF := (Formation{"web": 0, "worker": 2, "clock": 1}); !reflect.DeepEqual(p.Formation, wantF) {
		t.Errorf("Formation = %v, want %v", p.Formation, wantF)
	}

	_, err = Load(Options{Procfile: procfile, Only: []string{"web", "wrker"}})
	wantErr := `unknown process type "wrker"; ` + procfile + " declares web, worker, clock"
	if err == nil || err.Error() != wantErr {
		t.Errorf("unknown type: error = %v, want %q", err, wantErr)
	}

	_, err = Load(Options{Procfile: procfile, Only: []string{"web"}, Formation: "web=0"})
	wantErr = "formation runs no processes: web=0; give at least one type a count above 0, as in -m web=1"
	if err == nil || err.Error() != wantErr {
		t.Errorf("web=0: error = %v, want %q", err, wantErr)
	}
}

func TestLoadProcfileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "Procfile")

	_, err := Load(Options{Procfile: missing})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing Procfile: error = %v, want one naming %s", err, missing)
	}

	bad := writeFile(t, dir, "Procfile.bad", "web bin/server\n")
	for _, optional := range []bool{false, true} {
		_, err = Load(Options{Procfile: bad, ProcfileOptional: optional})
		want := bad + `: no process types, 1 line skipped; fix it or add a line like "web: bin/server"`
		if err == nil || err.Error() != want {
			t.Errorf("optional=%v: error = %v, want %q", optional, err, want)
		}
	}
}

func TestLoadProcfileOptional(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, ".env", "GREETING=hello\nPORT=4000\n")
	t.Chdir(dir)

	p, err := Load(Options{ProcfileOptional: true, Environ: []string{"A=1"}})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if p.Procfile != nil || p.Dynos != nil || p.Formation != nil {
		t.Errorf("Procfile %v, Dynos %v, Formation %v; want all nil", p.Procfile, p.Dynos, p.Formation)
	}
	if p.Dir != dir {
		t.Errorf("Dir = %q, want %q", p.Dir, dir)
	}
	if p.BasePort != 4000 {
		t.Errorf("BasePort = %d, want 4000", p.BasePort)
	}
	env := p.OneOffEnv("run.1")
	want := []string{"A=1", "DYNO=run.1", "GREETING=hello", "PORT=4000", "PS=run.1"}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("OneOffEnv = %q, want %q", env, want)
	}

	_, err = Load(Options{ProcfileOptional: true, Only: []string{"web"}})
	if err == nil {
		t.Error("Only without a Procfile succeeded")
	}
}

func TestOneOffEnv(t *testing.T) {
	p := &Project{
		Env:      []string{"A=1", "DYNO=old", "PORT=1", "PS=old", "Z=26"},
		BasePort: 5000,
	}
	got := p.OneOffEnv("run.1")
	want := []string{"A=1", "DYNO=run.1", "PORT=5000", "PS=run.1", "Z=26"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("OneOffEnv = %q, want %q", got, want)
	}
	if p.Env[1] != "DYNO=old" {
		t.Errorf("OneOffEnv changed Project.Env: %q", p.Env)
	}
}
