// Package kubernetes writes one release of an app (an export.Plan) as the
// Kubernetes objects that run it as dyno and Heroku do, built from the
// subset of the Kubernetes API's types they use (types.go; the tests
// decode every document strictly into the API's own) and serialised by
// sigs.k8s.io/yaml: keys sorted, no timestamps, no status, so the same
// plan always gives the same bytes.
//
// The objects, in the order they are applied:
//
//   - Secret APP-config (Opaque) holds the release's config vars. Every
//     container takes them all through envFrom, as a dyno does. They are
//     in data, base64, not stringData: kubectl apply merges stringData
//     into data on the server, so a var later unset would linger there.
//   - Job APP-release-vN, when the release has a release command, runs
//     it once before the rollout, as Heroku's release phase: restart
//     policy Never and no retries (a failed release phase fails the
//     release; it is not run again), an hour's deadline as on Heroku, and
//     the hook annotations Helm (pre-install,pre-upgrade) and Argo CD
//     (PreSync) understand, so either runs it first and stops on failure.
//     Both run hooks again at each upgrade or sync, so a release command
//     should be safe to repeat, as a migration tool's is. Its name
//     carries the version, so that kubectl apply of the same release
//     again leaves the finished Job alone rather than running it twice.
//     With plain kubectl, apply the Secret and the Job first and wait for
//     the Job (kubectl wait --for=condition=complete job/APP-release-vN)
//     before the rest. It has the default size's memory. The Job needs
//     the Secret, and Helm and Argo CD create hooks before everything
//     else, so with a Job the Secret is a hook too, ordered before it;
//     Helm then leaves it behind at helm uninstall, as it does hooks.
//   - Deployment APP-TYPE per process type that forms dynos, with the
//     formation's quantity as replicas (0 kept: a type scaled down stays
//     known, as in dyno ps), the image's launcher running the type by
//     name (args [TYPE]), PORT=5000 and the size's memory quota as both
//     the request and the limit. Kubernetes OOM-kills at the limit, so
//     the quota is a hard limit there where Heroku only warns (R14)
//     before its kill at twice the quota (R15): size the formation with
//     that in mind. No CPU is asked or capped: Heroku shares CPU by size,
//     it does not throttle a dyno to a fraction of a core. The grace
//     period between SIGTERM and SIGKILL is dyno's stop timeout. The
//     update strategy is Kubernetes' default rolling update, which is
//     Heroku's preboot: new dynos take traffic before old ones stop.
//   - Service APP-web (ClusterIP, port 80 to the container's port named
//     http) and Ingress APP, one rule per hostname of the app (its
//     default hostname and its custom domains), when the release has a
//     web process type. The Ingress names no class, so the cluster's
//     default controller serves it, and has no TLS: Heroku's Automated
//     Certificate Management is a cert-manager annotation away, which
//     depends on the cluster's issuers.
//
// Each pod template carries the release's version as a label, and a new
// release always has a new version (a config var change too), so
// applying a new release's manifests restarts every dyno, as on Heroku;
// the selectors match only the app and the process type, so a
// Deployment adopts the new version's pods. The web container has a
// startup probe that gives it Heroku's 60 seconds to bind PORT (R10)
// before the liveness probe, a TCP connect to the port as Heroku's
// router checks a dyno, may restart it; readiness is the same connect.
//
// Kubernetes names are stricter than Heroku's process type names: a type
// is named in objects, labels and the container in lower case with
// dashes for underscores (Worker_2 becomes worker-2), and a name that
// still does not fit, or two types that map to one name, is an error
// naming the type. The launcher is still given the type as the Procfile
// spells it. Pods run as the image's user (12345), without privilege
// escalation, without a service account token (a dyno never talks to a
// cluster's API) and without service links (Kubernetes would otherwise
// set variables like APP_WEB_PORT that can shadow config vars). Objects
// name no namespace: kubectl's current one, or -n, places them.
package kubernetes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/export"
	"github.com/dyno-run/dyno/supervisor/release"
)

// ImageUser is the uid and gid the image's processes run as, the user
// `dyno export oci` makes: pods run as it, never as root.
const ImageUser = 12345

// bootTimeout is how long Heroku gives a web dyno to bind PORT (R10).
const bootTimeout = 60 * time.Second

// Options are what the plan does not say.
type Options struct {
	// Image is the image reference the containers run; "" is the plan's
	// APP:vN, as `dyno export oci` tags its archive.
	Image string
}

// Manifests returns the objects that run p, in the order they are
// applied: the Secret, the release Job, the Deployments (web first, then
// the others by name), the Service and the Ingress.
func Manifests(p *export.Plan, o Options) ([]Object, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	image := o.Image
	if image == "" {
		image = p.Image()
	}
	if image == "" || strings.ContainsFunc(image, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("image reference %q has spaces or control characters; give one like registry.example.com/%s:v%d", image, p.App, p.Release.Version)
	}
	b := builder{p: p, image: image, version: fmt.Sprintf("v%d", p.Release.Version)}
	names, err := typeNames(p)
	if err != nil {
		return nil, err
	}

	objs := []Object{b.secret()}
	if p.ReleaseCommand() != "" {
		objs[0].header().Metadata.Annotations = hook("-1")
		objs = append(objs, b.releaseJob())
	}
	web := false
	for _, t := range p.Types() {
		objs = append(objs, b.deployment(t, names[t]))
		web = web || t == "web"
	}
	if web {
		ing, err := b.ingress()
		if err != nil {
			return nil, err
		}
		objs = append(objs, b.service(), ing)
	}
	return objs, nil
}

// typeNames maps p's process types to the names Kubernetes objects,
// labels and containers take, refusing a type without one.
func typeNames(p *export.Plan) (map[string]string, error) {
	names := make(map[string]string)
	by := make(map[string]string) // Kubernetes name to process type
	for _, t := range p.Types() {
		n := strings.ReplaceAll(strings.ToLower(t), "_", "-")
		// The Deployment's name, APP-n, must be a DNS label too, for the
		// pods' host names; the app's name is one already.
		if why := checkLabel(p.App + "-" + n); why != "" {
			return nil, fmt.Errorf("process type %q cannot name a Kubernetes Deployment (%s-%s: %s); rename it in the Procfile to lower-case letters, digits and dashes, at most %d in all", t, p.App, n, why, labelMaxLength-len(p.App)-1)
		}
		if other, ok := by[n]; ok {
			return nil, fmt.Errorf("process types %q and %q both become %s-%s in Kubernetes; rename one in the Procfile", other, t, p.App, n)
		}
		names[t], by[n] = n, t
	}
	return names, nil
}

type builder struct {
	p       *export.Plan
	image   string
	version string // "vN"
}

func (b *builder) configName() string { return b.p.App + "-config" }

// labels are the recommended labels of an object of component.
func (b *builder) labels(component string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       b.p.App,
		"app.kubernetes.io/instance":   b.p.App,
		"app.kubernetes.io/component":  component,
		"app.kubernetes.io/version":    b.version,
		"app.kubernetes.io/managed-by": "dyno",
		"app.kubernetes.io/part-of":    b.p.App,
	}
}

// selector picks a component's pods of every version.
func (b *builder) selector(component string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":      b.p.App,
		"app.kubernetes.io/component": component,
	}
}

// header is the header of an object of kind, named name, of component.
func (b *builder) header(apiVersion, kind, name, component string) Header {
	return Header{APIVersion: apiVersion, Kind: kind, Metadata: ObjectMeta{Name: name, Labels: b.labels(component)}}
}

func (b *builder) secret() *Secret {
	data := make(map[string][]byte, len(b.p.Release.ConfigVars))
	for k, v := range b.p.Release.ConfigVars {
		data[k] = []byte(v)
	}
	return &Secret{
		Header: b.header("v1", "Secret", b.configName(), "config"),
		Type:   "Opaque",
		Data:   data,
	}
}

// container is the container that runs process type t of the release.
func (b *builder) container(name, t string, size int64) Container {
	c := Container{
		Name:    name,
		Image:   b.image,
		Args:    []string{t},
		EnvFrom: []EnvFromSource{{SecretRef: &SecretEnvSource{Name: b.configName()}}},
		SecurityContext: &SecurityContext{
			RunAsNonRoot:             new(true),
			RunAsUser:                new(int64(ImageUser)),
			RunAsGroup:               new(int64(ImageUser)),
			AllowPrivilegeEscalation: new(false),
		},
	}
	// A size dyno.toml lacks (only the release Job's default can be)
	// leaves the container unbounded rather than guessing one.
	if size > 0 {
		q := quantity(size)
		c.Resources = &ResourceRequirements{
			Limits:   map[string]string{"memory": q},
			Requests: map[string]string{"memory": q},
		}
	}
	return c
}

// podSpec is the pod of one container, as a dyno: the stop timeout as
// its grace period, no API token, no service links.
func (b *builder) podSpec(c Container) PodSpec {
	return PodSpec{
		Containers:                    []Container{c},
		TerminationGracePeriodSeconds: new(int64(math.Ceil(b.p.StopTimeout.Seconds()))),
		AutomountServiceAccountToken:  new(false),
		EnableServiceLinks:            new(false),
	}
}

func (b *builder) deployment(t, name string) *Deployment {
	c := b.container(name, t, b.p.Size(t).Memory)
	// PORT is set for every type, as dyno and Heroku do; only web gets
	// traffic on it.
	c.Env = []EnvVar{{Name: "PORT", Value: fmt.Sprint(export.DefaultPort)}}
	if t == "web" {
		c.Ports = []ContainerPort{{Name: "http", ContainerPort: export.DefaultPort, Protocol: "TCP"}}
		connect := &TCPSocketAction{Port: "http"}
		const period = 5
		c.StartupProbe = &Probe{TCPSocket: connect, PeriodSeconds: period, FailureThreshold: int32(bootTimeout.Seconds() / period)}
		c.LivenessProbe = &Probe{TCPSocket: connect}
		c.ReadinessProbe = &Probe{TCPSocket: connect}
	}
	return &Deployment{
		Header: b.header("apps/v1", "Deployment", b.p.App+"-"+name, name),
		Spec: DeploymentSpec{
			Replicas: new(int32(b.p.Formation[t].Quantity)),
			Selector: &LabelSelector{MatchLabels: b.selector(name)},
			Template: PodTemplateSpec{
				Metadata: ObjectMeta{Labels: b.labels(name)},
				Spec:     b.podSpec(c),
			},
		},
	}
}

func (b *builder) releaseJob() *Job {
	c := b.container("release", "release", b.p.Sizes[app.DefaultSize].Memory)
	spec := b.podSpec(c)
	spec.RestartPolicy = "Never"
	h := b.header("batch/v1", "Job", b.p.App+"-release-"+b.version, "release")
	h.Metadata.Annotations = hook("0")
	return &Job{
		Header: h,
		Spec: JobSpec{
			BackoffLimit:          new(int32(0)),
			ActiveDeadlineSeconds: new(int64(release.PhaseLimit.Seconds())),
			Template: PodTemplateSpec{
				Metadata: ObjectMeta{Labels: b.labels("release")},
				Spec:     spec,
			},
		},
	}
}

// hook are the annotations that make an object a hook Helm and Argo CD
// create before the release's other objects, weight ordering hooks
// among themselves (lower first). A rerun of the same release replaces a
// hook rather than failing on its name.
func hook(weight string) map[string]string {
	return map[string]string{
		"helm.sh/hook":                          "pre-install,pre-upgrade",
		"helm.sh/hook-weight":                   weight,
		"helm.sh/hook-delete-policy":            "before-hook-creation",
		"argocd.argoproj.io/hook":               "PreSync",
		"argocd.argoproj.io/sync-wave":          weight,
		"argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
	}
}

func (b *builder) service() *Service {
	return &Service{
		Header: b.header("v1", "Service", b.p.App+"-web", "web"),
		Spec: ServiceSpec{
			Type:     "ClusterIP",
			Selector: b.selector("web"),
			Ports:    []ServicePort{{Name: "http", Port: 80, TargetPort: "http", Protocol: "TCP"}},
		},
	}
}

func (b *builder) ingress() (*Ingress, error) {
	prefix := "Prefix"
	backend := IngressBackend{Service: &IngressServiceBackend{
		Name: b.p.App + "-web",
		Port: ServiceBackendPort{Name: "http"},
	}}
	var rules []IngressRule
	for _, h := range b.p.Hosts {
		if why := checkSubdomain(h, strings.HasPrefix(h, "*.")); why != "" {
			return nil, fmt.Errorf("hostname %q cannot be an Ingress host (%s); remove it with dyno domains:remove %s -a %s, or set [router] domain in dyno.toml to a DNS name", h, why, h, b.p.App)
		}
		rules = append(rules, IngressRule{
			Host: h,
			HTTP: &HTTPIngressRuleValue{Paths: []HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: backend}}},
		})
	}
	return &Ingress{
		Header: b.header("networking.k8s.io/v1", "Ingress", b.p.App, "web"),
		Spec:   IngressSpec{Rules: rules},
	}, nil
}

// Marshal returns obj as one YAML document, keys sorted (it goes through
// encoding/json's maps).
func Marshal(obj Object) ([]byte, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", kind(obj), name(obj), err)
	}
	// Numbers stay as written: a float64 would round an int64 past 2^53.
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", kind(obj), name(obj), err)
	}
	y, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", kind(obj), name(obj), err)
	}
	return y, nil
}

// WriteStream writes objs to w as one YAML stream, documents separated by
// "---", as kubectl apply -f - reads it.
func WriteStream(w io.Writer, objs []Object) error {
	for i, obj := range objs {
		y, err := Marshal(obj)
		if err != nil {
			return err
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(y); err != nil {
			return err
		}
	}
	return nil
}

// FileNames are the names of objs' files, one each, numbered in steps of
// ten in apply order (00-secret-APP-config.yaml, 10-job-…) so that
// kubectl apply -f DIR, which reads a folder's files in name order,
// applies them in that order. Past ten objects the numbers widen, all
// alike, to keep that order.
func FileNames(objs []Object) []string {
	width := max(2, len(fmt.Sprint(10*(len(objs)-1))))
	names := make([]string, len(objs))
	for i, obj := range objs {
		names[i] = fmt.Sprintf("%0*d-%s-%s.yaml", width, 10*i, strings.ToLower(kind(obj)), name(obj))
	}
	return names
}

// OwnFile reports whether a file called name that holds data is one an
// export of app wrote, for some release: named as FileNames names them,
// and an object labelled as app's and managed by dyno (another app's
// name can start with app's). An export into a folder removes those that
// it does not write again (a process type removed, the previous
// release's Job), which kubectl apply -f DIR would otherwise apply.
func OwnFile(app, name string, data []byte) bool {
	num, rest, ok := strings.Cut(name, "-")
	if !ok || len(num) < 2 || strings.Trim(num, "0123456789") != "" {
		return false
	}
	kind, rest, ok := strings.Cut(rest, "-")
	if !ok || !slices.Contains(kinds, kind) || !strings.HasSuffix(rest, ".yaml") {
		return false
	}
	var obj Header
	if yaml.Unmarshal(data, &obj) != nil {
		return false
	}
	labels := obj.Metadata.Labels
	return strings.ToLower(obj.Kind) == kind && labels["app.kubernetes.io/name"] == app &&
		labels["app.kubernetes.io/managed-by"] == "dyno"
}

// kinds are the kinds Manifests makes, as file names spell them.
var kinds = []string{"secret", "job", "deployment", "service", "ingress"}

// IsSecret reports whether obj holds config vars, whose file only its
// owner should read.
func IsSecret(obj Object) bool { return kind(obj) == "Secret" }

func kind(obj Object) string { return obj.header().Kind }

func name(obj Object) string { return obj.header().Metadata.Name }
