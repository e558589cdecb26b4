package isolate

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The committed resident init is what its source builds to: a change to
// resident.c without `make resident` fails here. Another gcc than the
// one recorded may lay the same program out otherwise, so the test
// compares only where that one is installed, and says so where not.
func TestResidentBinaryFromSource(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the resident init is built for amd64 alone")
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	version, err := exec.Command(cc, "--version").Output()
	if err != nil {
		t.Skipf("no %s to rebuild the resident init with: %v", cc, err)
	}
	recorded, err := os.ReadFile("resident/gcc-version")
	if err != nil {
		t.Fatal(err)
	}
	have, _, _ := strings.Cut(string(version), "\n")
	if want := strings.TrimSpace(string(recorded)); have != want {
		t.Skipf("%s is %q; the resident init was built with %q", cc, have, want)
	}
	out := filepath.Join(t.TempDir(), "resident")
	if b, err := exec.Command("sh", "resident/build.sh", out).CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, b)
	}
	built, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built, residentInit) {
		t.Errorf("resident/resident-amd64 (%d bytes) is not what resident.c builds to (%d bytes): run make resident and commit it", len(residentInit), len(built))
	}
	// A few kilobytes, or the point of it is lost.
	if len(residentInit) > 16<<10 {
		t.Errorf("the resident init is %d bytes", len(residentInit))
	}
}
