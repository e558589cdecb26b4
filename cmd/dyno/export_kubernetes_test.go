package main

// dyno export kubernetes through the binary, on an app built with the
// fixture buildpack: the manifests decode strictly into the Kubernetes
// API's types and say what the ledger and dyno.toml say, and kubectl
// applies them (client-side dry run) in the order of their files.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/dyno-run/dyno/internal/testutil"
	"github.com/dyno-run/dyno/isolate/cgroup"
	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/daemon"
)

// k8sDocs are the documents of an export, each strictly decoded into
// the type of its kind.
type k8sDocs struct {
	secret      *corev1.Secret
	job         *batchv1.Job
	deployments map[string]*appsv1.Deployment // by name
	service     *corev1.Service
	ingress     *networkingv1.Ingress
	kinds       []string // in stream order
}

// decodeK8s reads docs strictly: a field the API type lacks fails the
// test, as does a kind export does not write.
func decodeK8s(t *testing.T, docs []string) k8sDocs {
	t.Helper()
	d := k8sDocs{deployments: map[string]*appsv1.Deployment{}}
	for _, doc := range docs {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("%v:\n%s", err, doc)
		}
		var into any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Secret":
			d.secret = &corev1.Secret{}
			into = d.secret
		case "batch/v1 Job":
			d.job = &batchv1.Job{}
			into = d.job
		case "apps/v1 Deployment":
			into = &appsv1.Deployment{}
		case "v1 Service":
			d.service = &corev1.Service{}
			into = d.service
		case "networking.k8s.io/v1 Ingress":
			d.ingress = &networkingv1.Ingress{}
			into = d.ingress
		default:
			t.Fatalf("unexpected %s %s:\n%s", tm.APIVersion, tm.Kind, doc)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
			t.Fatalf("strict decode of a %s: %v\n%s", tm.Kind, err, doc)
		}
		if dep, ok := into.(*appsv1.Deployment); ok {
			d.deployments[dep.Name] = dep
		}
		d.kinds = append(d.kinds, tm.Kind)
	}
	return d
}

func TestExportKubernetes(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	h := app.Home{Dir: e.home}
	if err := os.WriteFile(h.SizesFile(), []byte("[daemon]\nstop_timeout = \"12s\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.GiveToNobody(t, h.SizesFile())
	e.deployFixture(t, "shop", "web: exec python3 -m http.server $PORT\nworker: exec sleep 1000\nrelease: echo migrating\n")
	e.must(t, "ps:scale", "web=2", "worker=1:standard-2x", "-a", "shop")
	e.must(t, "config:set", "DATABASE_URL=postgres://db/shop", "MULTI=a b\nc: d", "-a", "shop")
	e.must(t, "domains:add", "www.shop.example.com", "-a", "shop")

	st, err := ledger.Open(filepath.Join(e.home, "apps", "shop", "ledger.jsonl")).State()
	if err != nil {
		t.Fatal(err)
	}
	sizes, err := cgroup.LoadSizes(h.SizesFile())
	if err != nil {
		t.Fatal(err)
	}
	settings, err := daemon.LoadSettings(h.SizesFile())
	if err != nil {
		t.Fatal(err)
	}
	v := st.Current.Version
	version := fmt.Sprintf("v%d", v)

	out := e.must(t, "export", "kubernetes", "-a", "shop")
	docs := strings.Split(out, "\n---\n")
	d := decodeK8s(t, docs)
	if want := []string{"Secret", "Job", "Deployment", "Deployment", "Service", "Ingress"}; !slices.Equal(d.kinds, want) {
		t.Fatalf("kinds in order %q, want %q", d.kinds, want)
	}
	if again := e.must(t, "export", "kubernetes", "-a", "shop"); again != out {
		t.Error("two exports of one release differ")
	}

	got := map[string]string{}
	for k, v := range d.secret.Data {
		got[k] = string(v)
	}
	if !maps.Equal(got, st.Current.ConfigVars) || got["MULTI"] != "a b\nc: d" {
		t.Errorf("secret holds %q; the ledger %q", got, st.Current.ConfigVars)
	}
	if d.job.Name != "shop-release-"+version || d.job.Spec.Template.Spec.Containers[0].Args[0] != "release" {
		t.Errorf("job %s runs %q", d.job.Name, d.job.Spec.Template.Spec.Containers[0].Args)
	}
	for _, typ := range []string{"web", "worker"} {
		dep := d.deployments["shop-"+typ]
		if dep == nil {
			t.Fatalf("no Deployment shop-%s among %v", typ, slices.Collect(maps.Keys(d.deployments)))
		}
		f := st.Formation[typ]
		if *dep.Spec.Replicas != int32(f.Quantity) {
			t.Errorf("%s: %d replicas, the formation %d", typ, *dep.Spec.Replicas, f.Quantity)
		}
		c := dep.Spec.Template.Spec.Containers[0]
		if want := sizes[cmp.Or(f.Size, app.DefaultSize)].Memory; c.Resources.Limits.Memory().Value() != want || c.Resources.Requests.Memory().Value() != want {
			t.Errorf("%s at %s: memory limit %s, request %s; want %d bytes", typ, f.Size, c.Resources.Limits.Memory(), c.Resources.Requests.Memory(), want)
		}
		if got := *dep.Spec.Template.Spec.TerminationGracePeriodSeconds; got != int64(settings.StopTimeout.Seconds()) || got != 12 {
			t.Errorf("%s: grace %ds, stop_timeout %s", typ, got, settings.StopTimeout)
		}
		if c.Image != "shop:"+version || !slices.Equal(c.Args, []string{typ}) {
			t.Errorf("%s runs %s %q", typ, c.Image, c.Args)
		}
		l := dep.Spec.Template.Labels
		if l["app.kubernetes.io/name"] != "shop" || l["app.kubernetes.io/component"] != typ || l["app.kubernetes.io/version"] != version || l["app.kubernetes.io/managed-by"] != "dyno" {
			t.Errorf("%s labels %v", typ, l)
		}
	}
	if d.deployments["shop-worker"].Spec.Template.Spec.Containers[0].Resources.Limits.Memory().String() != "1Gi" {
		t.Errorf("worker at standard-2x: %s", d.deployments["shop-worker"].Spec.Template.Spec.Containers[0].Resources.Limits.Memory())
	}
	var hosts []string
	for _, r := range d.ingress.Spec.Rules {
		hosts = append(hosts, r.Host)
	}
	if want := []string{settings.Router.Host("shop"), "www.shop.example.com"}; !slices.Equal(hosts, want) {
		t.Errorf("ingress hosts %q, want %q", hosts, want)
	}

	// Into a folder: one file each, in apply order, the secret private.
	// The folder is made, its parent already there.
	parent := testutil.SharedDir(t)
	testutil.GiveToNobody(t, parent)
	dir := filepath.Join(parent, "shop")
	e.must(t, "export", "kubernetes", "-a", "shop", "-o", dir, "--image", "registry.example.com/shop:"+version)
	files := dirFiles(t, dir)
	want := []string{
		"00-secret-shop-config.yaml",
		"10-job-shop-release-" + version + ".yaml",
		"20-deployment-shop-web.yaml",
		"30-deployment-shop-worker.yaml",
		"40-service-shop-web.yaml",
		"50-ingress-shop.yaml",
	}
	if !slices.Equal(files, want) {
		t.Fatalf("files %q, want %q", files, want)
	}
	var fromFiles []string
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		fromFiles = append(fromFiles, string(b))
		fi, _ := os.Stat(filepath.Join(dir, name))
		if wantMode := map[bool]os.FileMode{true: 0o600, false: 0o644}[strings.Contains(name, "-secret-")]; fi.Mode().Perm() != wantMode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), wantMode)
		}
	}
	if img := decodeK8s(t, fromFiles).deployments["shop-web"].Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/shop:"+version {
		t.Errorf("--image: web runs %s", img)
	}
	kubectlApply(t, dir, []string{
		"secret/shop-config", "job.batch/shop-release-" + version, "deployment.apps/shop-web",
		"deployment.apps/shop-worker", "service/shop-web", "ingress.networking.k8s.io/shop",
	})

	// The next release, into the same folder: the previous release's
	// Job goes, a file of the user's stays. An earlier release exports
	// as it was.
	mine := filepath.Join(dir, "90-configmap-extra.yaml")
	if err := os.WriteFile(mine, []byte("kind: ConfigMap\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.must(t, "config:set", "NEW=1", "-a", "shop")
	next := fmt.Sprintf("v%d", v+1)
	wantLines(t, e.must(t, "export", "kubernetes", "-a", "shop", "-o", dir), "removed "+filepath.Join(dir, want[1]))
	want[1] = "10-job-shop-release-" + next + ".yaml"
	if files := dirFiles(t, dir); !slices.Equal(files, append(slices.Clone(want), filepath.Base(mine))) {
		t.Errorf("after the next release, files %q", files)
	}
	old := decodeK8s(t, strings.Split(e.must(t, "export", "kubernetes", "-a", "shop", "--release", version), "\n---\n"))
	if _, ok := old.secret.Data["NEW"]; ok || old.job.Name != "shop-release-"+version {
		t.Errorf("--release %s: secret %v, job %s", version, slices.Collect(maps.Keys(old.secret.Data)), old.job.Name)
	}
}

// dirFiles are the names in dir, sorted, failing on a leftover temporary
// file of an atomic write.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("leftover %s", e.Name())
		}
		names = append(names, e.Name())
	}
	return names
}

func TestExportKubernetesBadInput(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "bare")
	e.failLine(t, "bare has no release with code yet; deploy one first", "export", "kubernetes", "-a", "bare")
	e.deployFixture(t, "shop", "worker: exec sleep 1000\n")

	file := filepath.Join(e.project, "manifests")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.failLine(t, "-o "+file+" is not a folder; give a folder", "export", "kubernetes", "-a", "shop", "-o", file)
	e.failLine(t, "not a directory; give a folder", "export", "kubernetes", "-a", "shop", "-o", filepath.Join(file, "k8s"))
	// A folder nobody but root may write: the unprivileged user the
	// dyno runs as cannot, whether it owns the folder or not.
	locked := t.TempDir()
	os.Chmod(locked, 0o555)
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	e.failLine(t, "give a folder you can write", "export", "kubernetes", "-a", "shop", "-o", locked)
	e.failLine(t, `--release "x" is not a release version`, "export", "kubernetes", "-a", "shop", "--release", "x")
	e.failLine(t, `image reference "a b"`, "export", "kubernetes", "-a", "shop", "--image", "a b")
}

// kubectlApply runs kubectl apply --dry-run=client on dir and wants it to
// apply want in that order. Even a client-side dry run asks a server for
// its API's kinds and for each object's current state, so a fake one
// answers: the kinds of the four groups export uses, and "not found" for
// every object. Without kubectl, it skips.
func kubectlApply(t *testing.T, dir string, want []string) {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed; the manifests were checked by strict decoding only")
	}
	srv, writes := fakeAPIServer(t)
	// An empty kubeconfig, so that nothing of the user's is read.
	cfg := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kubectl, "--kubeconfig", cfg, "--server", srv.URL, "--namespace", "default",
		"apply", "--dry-run=client", "--validate=false", "-f", dir)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, ok := strings.CutSuffix(line, " created (dry run)")
		if !ok {
			t.Errorf("kubectl apply: %q", line)
		}
		got = append(got, name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("kubectl applied %q, want %q", got, want)
	}
	if w := writes(); len(w) > 0 {
		t.Errorf("a dry run wrote to the server: %q", w)
	}
}

// fakeAPIServer serves the discovery documents of the kinds export
// writes, and 404 for everything else; writes lists the requests that
// would have changed something.
func fakeAPIServer(t *testing.T) (*httptest.Server, func() []string) {
	resources := map[string][]metav1.APIResource{
		"v1": {
			{Name: "secrets", Namespaced: true, Kind: "Secret", Verbs: []string{"get", "create", "patch"}},
			{Name: "services", Namespaced: true, Kind: "Service", Verbs: []string{"get", "create", "patch"}},
		},
		"apps/v1":              {{Name: "deployments", Namespaced: true, Kind: "Deployment", Verbs: []string{"get", "create", "patch"}}},
		"batch/v1":             {{Name: "jobs", Namespaced: true, Kind: "Job", Verbs: []string{"get", "create", "patch"}}},
		"networking.k8s.io/v1": {{Name: "ingresses", Namespaced: true, Kind: "Ingress", Verbs: []string{"get", "create", "patch"}}},
	}
	var groups metav1.APIGroupList
	for _, gv := range slices.Sorted(maps.Keys(resources)) {
		g, ver, ok := strings.Cut(gv, "/")
		if !ok {
			continue
		}
		v := metav1.GroupVersionForDiscovery{GroupVersion: gv, Version: ver}
		groups.Groups = append(groups.Groups, metav1.APIGroup{Name: g, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v})
	}
	groups.Kind, groups.APIVersion = "APIGroupList", "v1"
	var mu sync.Mutex
	var writes []string
	reply := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			mu.Lock()
			writes = append(writes, r.Method+" "+r.URL.Path)
			mu.Unlock()
		}
		switch p := r.URL.Path; {
		case p == "/api":
			reply(w, 200, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
		case p == "/apis":
			reply(w, 200, groups)
		case resources[strings.TrimPrefix(strings.TrimPrefix(p, "/api/"), "/apis/")] != nil:
			gv := strings.TrimPrefix(strings.TrimPrefix(p, "/api/"), "/apis/")
			reply(w, 200, metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv, APIResources: resources[gv]})
		default:
			reply(w, 404, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Reason: metav1.StatusReasonNotFound, Code: 404, Message: p + " not found"})
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(writes)
	}
}
