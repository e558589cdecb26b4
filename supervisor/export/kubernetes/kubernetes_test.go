package kubernetes

import (
	"bytes"
	"flag"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/dyno-run/dyno/isolate/cgroup"
	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/supervisor/export"
)

var show = flag.Bool("show", false, "print the manifests of the test plan")

const mib = 1 << 20

func testPlan() *export.Plan {
	return &export.Plan{
		App: "shop",
		Release: ledger.Release{
			Version: 7,
			Status:  ledger.StatusSucceeded,
			Slug:    "sha256:1234",
			ProcessTypes: map[string]string{
				"web":       "bin/web",
				"worker":    "bin/worker",
				"Clock_Job": "bin/clock",
				"release":   "bin/migrate",
			},
			ConfigVars: map[string]string{"DATABASE_URL": "postgres://db/shop", "MULTI": "a\nb: c"},
		},
		Formation: ledger.Formation{
			"web":       {Quantity: 2, Size: "standard-1x"},
			"worker":    {Quantity: 1, Size: "standard-2x"},
			"Clock_Job": {Quantity: 0, Size: "standard-1x"},
		},
		Sizes: map[string]cgroup.Size{
			"standard-1x": {Name: "standard-1x", Memory: 512 * mib},
			"standard-2x": {Name: "standard-2x", Memory: 1024 * mib},
		},
		StopTimeout: 30 * time.Second,
		Hosts:       []string{"shop.dyno.localhost", "*.shop.example.com", "www.shop.example.com"},
	}
}

// decodeStrict reads a document into v, failing on any field v's type
// lacks, as a stricter API server would.
func decodeStrict(t *testing.T, doc []byte, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		t.Fatalf("strict decode into %T: %v\n%s", v, err, doc)
	}
}

func TestKubernetesManifests(t *testing.T) {
	p := testPlan()
	objs, err := Manifests(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	if err := WriteStream(&stream, objs); err != nil {
		t.Fatal(err)
	}
	if *show {
		t.Log("\n" + stream.String())
	}
	docs := strings.Split(stream.String(), "\n---\n")
	wantFiles := []string{
		"00-secret-shop-config.yaml",
		"10-job-shop-release-v7.yaml",
		"20-deployment-shop-web.yaml",
		"30-deployment-shop-clock-job.yaml",
		"40-deployment-shop-worker.yaml",
		"50-service-shop-web.yaml",
		"60-ingress-shop.yaml",
	}
	if got := FileNames(objs); !slices.Equal(got, wantFiles) {
		t.Fatalf("files %q, want %q", got, wantFiles)
	}
	if len(docs) != len(objs) {
		t.Fatalf("%d documents for %d objects", len(docs), len(objs))
	}
	for _, bad := range []string{"creationTimestamp", "status:"} {
		if strings.Contains(stream.String(), bad) {
			t.Errorf("the stream has %q", bad)
		}
	}

	var sec corev1.Secret
	decodeStrict(t, []byte(docs[0]), &sec)
	if sec.Kind != "Secret" || sec.APIVersion != "v1" || sec.Type != corev1.SecretTypeOpaque {
		t.Errorf("secret: %s %s type %s", sec.APIVersion, sec.Kind, sec.Type)
	}
	// The Job reads the Secret, and hooks come first: the Secret is one
	// too, ordered before the Job.
	if sec.Annotations["helm.sh/hook"] != "pre-install,pre-upgrade" || sec.Annotations["argocd.argoproj.io/hook"] != "PreSync" ||
		sec.Annotations["helm.sh/hook-weight"] != "-1" || sec.Annotations["argocd.argoproj.io/sync-wave"] != "-1" {
		t.Errorf("secret annotations %v", sec.Annotations)
	}
	got := map[string]string{}
	for k, v := range sec.Data {
		got[k] = string(v)
	}
	if !maps.Equal(got, p.Release.ConfigVars) {
		t.Errorf("secret data %q, want %q", got, p.Release.ConfigVars)
	}

	var job batchv1.Job
	decodeStrict(t, []byte(docs[1]), &job)
	if job.Name != "shop-release-v7" || *job.Spec.BackoffLimit != 0 ||
		job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever ||
		job.Annotations["helm.sh/hook"] != "pre-install,pre-upgrade" ||
		job.Annotations["argocd.argoproj.io/hook"] != "PreSync" ||
		job.Annotations["helm.sh/hook-weight"] != "0" || job.Annotations["argocd.argoproj.io/sync-wave"] != "0" ||
		job.Labels["app.kubernetes.io/component"] != "release" {
		t.Errorf("job: %+v", job)
	}
	jc := job.Spec.Template.Spec.Containers[0]
	if !slices.Equal(jc.Args, []string{"release"}) || jc.EnvFrom[0].SecretRef.Name != "shop-config" {
		t.Errorf("job container: %+v", jc)
	}

	wantDeploy := []struct {
		doc, name, component, arg string
		replicas                  int32
		memory                    string
	}{
		{docs[2], "shop-web", "web", "web", 2, "512Mi"},
		{docs[3], "shop-clock-job", "clock-job", "Clock_Job", 0, "512Mi"},
		{docs[4], "shop-worker", "worker", "worker", 1, "1Gi"},
	}
	for _, w := range wantDeploy {
		var d appsv1.Deployment
		decodeStrict(t, []byte(w.doc), &d)
		if d.Name != w.name || *d.Spec.Replicas != w.replicas {
			t.Errorf("%s: name %s, replicas %d; want %d", w.name, d.Name, *d.Spec.Replicas, w.replicas)
		}
		wantLabels := map[string]string{
			"app.kubernetes.io/name":       "shop",
			"app.kubernetes.io/instance":   "shop",
			"app.kubernetes.io/component":  w.component,
			"app.kubernetes.io/version":    "v7",
			"app.kubernetes.io/managed-by": "dyno",
			"app.kubernetes.io/part-of":    "shop",
		}
		if !maps.Equal(d.Labels, wantLabels) || !maps.Equal(d.Spec.Template.Labels, wantLabels) {
			t.Errorf("%s labels %v, template %v", w.name, d.Labels, d.Spec.Template.Labels)
		}
		sel := map[string]string{"app.kubernetes.io/name": "shop", "app.kubernetes.io/component": w.component}
		if !maps.Equal(d.Spec.Selector.MatchLabels, sel) {
			t.Errorf("%s selector %v", w.name, d.Spec.Selector.MatchLabels)
		}
		ps := d.Spec.Template.Spec
		if *ps.TerminationGracePeriodSeconds != 30 {
			t.Errorf("%s grace %d", w.name, *ps.TerminationGracePeriodSeconds)
		}
		c := ps.Containers[0]
		if c.Image != "shop:v7" || !slices.Equal(c.Args, []string{w.arg}) {
			t.Errorf("%s runs %s %q", w.name, c.Image, c.Args)
		}
		if lim, req := c.Resources.Limits.Memory().String(), c.Resources.Requests.Memory().String(); lim != w.memory || req != w.memory {
			t.Errorf("%s memory limit %s request %s, want %s", w.name, lim, req, w.memory)
		}
		if len(c.Env) != 1 || c.Env[0].Name != "PORT" || c.Env[0].Value != "5000" {
			t.Errorf("%s env %v", w.name, c.Env)
		}
		sc := c.SecurityContext
		if !*sc.RunAsNonRoot || *sc.RunAsUser != ImageUser || *sc.RunAsGroup != ImageUser || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s security context %+v", w.name, sc)
		}
		if web := w.component == "web"; web != (c.LivenessProbe != nil) || web != (c.ReadinessProbe != nil) || web != (len(c.Ports) == 1) {
			t.Errorf("%s: probes and ports only for web: %+v", w.name, c)
		}
	}

	var svc corev1.Service
	decodeStrict(t, []byte(docs[5]), &svc)
	if svc.Spec.Type != corev1.ServiceTypeClusterIP || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.StrVal != "http" {
		t.Errorf("service %+v", svc.Spec)
	}
	var ing networkingv1.Ingress
	decodeStrict(t, []byte(docs[6]), &ing)
	var hosts []string
	for _, r := range ing.Spec.Rules {
		hosts = append(hosts, r.Host)
		path := r.HTTP.Paths[0]
		if path.Path != "/" || *path.PathType != networkingv1.PathTypePrefix || path.Backend.Service.Name != "shop-web" {
			t.Errorf("ingress rule %+v", r)
		}
	}
	if !slices.Equal(hosts, p.Hosts) {
		t.Errorf("ingress hosts %q, want %q", hosts, p.Hosts)
	}

	// The same plan gives the same bytes.
	again, err := Manifests(testPlan(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var second bytes.Buffer
	if err := WriteStream(&second, again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stream.Bytes(), second.Bytes()) {
		t.Error("two exports of one plan differ")
	}
}

// Without a web type or a release command there is no Service, Ingress
// or Job; a given image is used as it is.
func TestKubernetesWorkerOnly(t *testing.T) {
	p := testPlan()
	delete(p.Release.ProcessTypes, "web")
	delete(p.Release.ProcessTypes, "release")
	delete(p.Release.ProcessTypes, "Clock_Job")
	delete(p.Formation, "web")
	delete(p.Formation, "Clock_Job")
	objs, err := Manifests(p, Options{Image: "registry.example.com/shop@sha256:abcd"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"00-secret-shop-config.yaml", "10-deployment-shop-worker.yaml"}
	if got := FileNames(objs); !slices.Equal(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
	if a := objs[0].header().Metadata.Annotations; len(a) != 0 {
		t.Errorf("without a release Job the Secret is no hook: %v", a)
	}
	doc, err := Marshal(objs[1])
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	decodeStrict(t, doc, &d)
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/shop@sha256:abcd" {
		t.Errorf("image %s", img)
	}
}

func TestKubernetesRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*export.Plan, *Options)
		want string
	}{
		{"colliding types", func(p *export.Plan, _ *Options) {
			p.Release.ProcessTypes["clock-job"] = "x"
		}, `process types "Clock_Job" and "clock-job" both become shop-clock-job`},
		{"long type", func(p *export.Plan, _ *Options) {
			p.Release.ProcessTypes[strings.Repeat("a", 60)] = "x"
		}, "rename it in the Procfile"},
		{"bad host", func(p *export.Plan, _ *Options) {
			p.Hosts = append(p.Hosts, "10.0.0.1:80")
		}, `hostname "10.0.0.1:80" cannot be an Ingress host`},
		{"bad image", func(_ *export.Plan, o *Options) { o.Image = "shop v7" }, `image reference "shop v7"`},
		{"no code", func(p *export.Plan, _ *Options) { p.Release.Slug = "" }, "has no code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, o := testPlan(), Options{}
			tc.edit(p, &o)
			_, err := Manifests(p, o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line with %q", err, tc.want)
			}
		})
	}
}

// Past ten objects the numbers widen so that name order stays apply
// order.
func TestKubernetesFileNamesWiden(t *testing.T) {
	p := testPlan()
	for _, t := range []string{"a1", "a2", "a3", "a4", "a5"} {
		p.Release.ProcessTypes[t] = "x"
	}
	objs, err := Manifests(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	names := FileNames(objs)
	if len(names) != 12 || names[0] != "000-secret-shop-config.yaml" || names[11] != "110-ingress-shop.yaml" {
		t.Fatalf("names %q", names)
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("%s sorts after %s", names[i-1], names[i])
		}
	}
}

func TestKubernetesOwnFile(t *testing.T) {
	p := testPlan()
	objs, err := Manifests(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	doc := func(obj Object) []byte {
		y, err := Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		return y
	}
	for i, name := range FileNames(objs) {
		if !OwnFile("shop", name, doc(objs[i])) {
			t.Errorf("OwnFile(shop, %s) is false", name)
		}
	}
	// Another app whose name starts with shop's: its files are its own.
	p.App = "shop-admin"
	other, err := Manifests(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range FileNames(other) {
		if OwnFile("shop", name, doc(other[i])) {
			t.Errorf("OwnFile(shop, %s) of app shop-admin is true", name)
		}
	}
	web := doc(objs[2])
	for name, data := range map[string][]byte{
		"20-deployment-shop-web.yml":      web,
		"20-deployment-shop-web.yaml.bak": web,
		"x0-deployment-shop-web.yaml":     web,
		"0-deployment-shop-web.yaml":      web,
		"20-service-shop-web.yaml":        web,                                                       // the name's kind is not the object's
		"20-deployment-shop-web.yaml":     []byte("kind: Deployment\nmetadata:\n  name: shop-web\n"), // the user's own
		"30-deployment-shop-x.yaml":       []byte("{not yaml"),
	} {
		if OwnFile("shop", name, data) {
			t.Errorf("OwnFile(shop, %s) is true", name)
		}
	}
}

// quantity writes sizes as the API's own resource.Quantity does.
func TestQuantityAsTheAPIWritesIt(t *testing.T) {
	for _, n := range []int64{0, 1, 999, 1000, 1023, 1024, 1500, 1536, 2000, 512 * mib, 768000000, 2560 * mib, 14336 * mib, 1e9, 1<<40 + 1, 1 << 62, 123456789} {
		want := resource.NewQuantity(n, resource.BinarySI).String()
		if got := quantity(n); got != want {
			t.Errorf("quantity(%d) = %s, the API writes %s", n, got, want)
		}
	}
}

// The names and hosts refused are those the API's validation refuses.
func TestNamesAsTheAPIChecksThem(t *testing.T) {
	for _, s := range []string{"shop-web", "a", "-a", "a-", "A", "a_b", "a.b", strings.Repeat("a", 63), strings.Repeat("a", 64), "9x", ""} {
		if got, want := checkLabel(s) == "", len(validation.IsDNS1123Label(s)) == 0; got != want {
			t.Errorf("checkLabel(%q) accepts: %v, the API's: %v", s, got, want)
		}
	}
	for _, s := range []string{"shop.dyno.localhost", "www.shop.example.com", "*.shop.example.com", "10.0.0.1:80", "a..b", ".a", "a.", "UPPER.example", strings.Repeat("a.", 126) + "a", strings.Repeat("a.", 127) + "a", "*.", "*a.b", "a.*.b"} {
		wild := strings.HasPrefix(s, "*.")
		check := validation.IsDNS1123Subdomain
		if wild {
			check = validation.IsWildcardDNS1123Subdomain
		}
		if got, want := checkSubdomain(s, wild) == "", len(check(s)) == 0; got != want {
			t.Errorf("checkSubdomain(%q) accepts: %v, the API's: %v", s, got, want)
		}
	}
}
