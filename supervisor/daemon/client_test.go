package daemon

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"testing"
)

// The client keeps the server's status and error id, so that callers
// branch with errors.As instead of on the message.
func TestClientKeepsStatusAndID(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /apps/gone", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "Couldn't find that app: gone")
	})
	mux.HandleFunc("GET /apps/proxy", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	})
	mux.HandleFunc("GET /apps/demo/dynos", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []Dyno{{Name: "run.1234", Type: "run", State: "up", App: AppRef{Name: "demo"}}})
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	defer srv.Close()

	c := NewClient(sock)
	ctx := context.Background()
	var e *APIError
	err = c.Do(ctx, http.MethodGet, "/apps/gone", nil, nil)
	if !errors.As(err, &e) || e.Status != http.StatusNotFound || e.ID != "not_found" || err.Error() != "Couldn't find that app: gone" {
		t.Errorf("404: %#v", err)
	}
	err = c.Do(ctx, http.MethodGet, "/apps/proxy", nil, nil)
	if !errors.As(err, &e) || e.Status != http.StatusBadGateway || e.ID != "" || err.Error() != "502 Bad Gateway" {
		t.Errorf("502 without the API's body: %#v, %q", err, err)
	}
	var dynos []Dyno
	if err := c.Do(ctx, http.MethodGet, "/apps/demo/dynos", nil, &dynos); err != nil || len(dynos) != 1 || dynos[0].Name != "run.1234" || dynos[0].App.Name != "demo" {
		t.Errorf("dynos: %v, %+v", err, dynos)
	}
	l.Close()
	srv.Close()
	if err := c.Do(ctx, http.MethodGet, "/apps/demo/dynos", nil, nil); !errors.Is(err, ErrNotRunning) {
		t.Errorf("no daemon: %v", err)
	}
}
