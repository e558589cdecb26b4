package isolate

import (
	"os"
	"testing"
)

// BenchmarkStartTrue starts and waits for /bin/true in a plain dyno,
// with the handover to the resident init and with the Go init kept.
func BenchmarkStartTrue(b *testing.B) {
	for _, keep := range []bool{false, true} {
		name := "resident"
		if keep {
			name = "go-init"
		}
		b.Run(name, func(b *testing.B) {
			sp, err := NewSpawner()
			if err != nil {
				b.Fatal(err)
			}
			sp.keepGoInit = keep
			for b.Loop() {
				d, err := sp.Start(Spec{Name: "bench.1", Argv: []string{"/bin/true"}, Env: os.Environ()})
				if err != nil {
					b.Fatal(err)
				}
				d.Wait()
			}
		})
	}
}
