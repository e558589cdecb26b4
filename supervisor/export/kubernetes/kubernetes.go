// Package kubernetes writes one release of an app (an export.Plan) as the
// Kubernetes objects that run it as dyno and Heroku do, built from the
// Kubernetes API's own types and serialised by sigs.k8s.io/yaml: keys
// sorted, no timestamps, no status, so the same plan always gives the
// same bytes.
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

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
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

// An Object is one manifest: a Kubernetes API object with its apiVersion,
// kind and name set.
type Object interface {
	runtime.Object
	metav1.Object
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
		objs[0].SetAnnotations(hook("-1"))
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
		if errs := validation.IsDNS1123Label(p.App + "-" + n); len(errs) > 0 {
			return nil, fmt.Errorf("process type %q cannot name a Kubernetes Deployment (%s-%s: %s); rename it in the Procfile to lower-case letters, digits and dashes, at most %d in all", t, p.App, n, errs[0], validation.DNS1123LabelMaxLength-len(p.App)-1)
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

func (b *builder) meta(name, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Labels: b.labels(component)}
}

func (b *builder) secret() *corev1.Secret {
	data := make(map[string][]byte, len(b.p.Release.ConfigVars))
	for k, v := range b.p.Release.ConfigVars {
		data[k] = []byte(v)
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: b.meta(b.configName(), "config"),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// container is the container that runs process type t of the release.
func (b *builder) container(name, t string, size int64) corev1.Container {
	c := corev1.Container{
		Name:  name,
		Image: b.image,
		Args:  []string{t},
		EnvFrom: []corev1.EnvFromSource{{
			SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: b.configName()}},
		}},
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             new(true),
			RunAsUser:                new(int64(ImageUser)),
			RunAsGroup:               new(int64(ImageUser)),
			AllowPrivilegeEscalation: new(false),
		},
	}
	// A size dyno.toml lacks (only the release Job's default can be)
	// leaves the container unbounded rather than guessing one.
	if size > 0 {
		q := *resource.NewQuantity(size, resource.BinarySI)
		c.Resources = corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceMemory: q},
			Requests: corev1.ResourceList{corev1.ResourceMemory: q},
		}
	}
	return c
}

// podSpec is the pod of one container, as a dyno: the stop timeout as
// its grace period, no API token, no service links.
func (b *builder) podSpec(c corev1.Container) corev1.PodSpec {
	return corev1.PodSpec{
		Containers:                    []corev1.Container{c},
		TerminationGracePeriodSeconds: new(int64(math.Ceil(b.p.StopTimeout.Seconds()))),
		AutomountServiceAccountToken:  new(false),
		EnableServiceLinks:            new(false),
	}
}

func (b *builder) deployment(t, name string) *appsv1.Deployment {
	c := b.container(name, t, b.p.Size(t).Memory)
	// PORT is set for every type, as dyno and Heroku do; only web gets
	// traffic on it.
	c.Env = []corev1.EnvVar{{Name: "PORT", Value: fmt.Sprint(export.DefaultPort)}}
	if t == "web" {
		c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: export.DefaultPort, Protocol: corev1.ProtocolTCP}}
		connect := corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}}
		const period = 5
		c.StartupProbe = &corev1.Probe{ProbeHandler: connect, PeriodSeconds: period, FailureThreshold: int32(bootTimeout.Seconds() / period)}
		c.LivenessProbe = &corev1.Probe{ProbeHandler: connect}
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: connect}
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: b.meta(b.p.App+"-"+name, name),
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(b.p.Formation[t].Quantity)),
			Selector: &metav1.LabelSelector{MatchLabels: b.selector(name)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: b.labels(name)},
				Spec:       b.podSpec(c),
			},
		},
	}
}

func (b *builder) releaseJob() *batchv1.Job {
	c := b.container("release", "release", b.p.Sizes[app.DefaultSize].Memory)
	spec := b.podSpec(c)
	spec.RestartPolicy = corev1.RestartPolicyNever
	meta := b.meta(b.p.App+"-release-"+b.version, "release")
	meta.Annotations = hook("0")
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: meta,
		Spec: batchv1.JobSpec{
			BackoffLimit:          new(int32(0)),
			ActiveDeadlineSeconds: new(int64(release.PhaseLimit.Seconds())),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: b.labels("release")},
				Spec:       spec,
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

func (b *builder) service() *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: b.meta(b.p.App+"-web", "web"),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: b.selector("web"),
			Ports: []corev1.ServicePort{{
				Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
}

func (b *builder) ingress() (*networkingv1.Ingress, error) {
	prefix := networkingv1.PathTypePrefix
	backend := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
		Name: b.p.App + "-web",
		Port: networkingv1.ServiceBackendPort{Name: "http"},
	}}
	var rules []networkingv1.IngressRule
	for _, h := range b.p.Hosts {
		check := validation.IsDNS1123Subdomain
		if strings.HasPrefix(h, "*.") {
			check = validation.IsWildcardDNS1123Subdomain
		}
		if errs := check(h); len(errs) > 0 {
			return nil, fmt.Errorf("hostname %q cannot be an Ingress host (%s); remove it with dyno domains:remove %s -a %s, or set [router] domain in dyno.toml to a DNS name", h, errs[0], h, b.p.App)
		}
		rules = append(rules, networkingv1.IngressRule{
			Host: h,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: backend}},
			}},
		})
	}
	return &networkingv1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: b.meta(b.p.App, "web"),
		Spec:       networkingv1.IngressSpec{Rules: rules},
	}, nil
}

// Marshal returns obj as one YAML document: keys sorted (it goes through
// encoding/json's maps), and without the status every API type carries,
// which is the cluster's to write.
func Marshal(obj Object) ([]byte, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", kind(obj), obj.GetName(), err)
	}
	// Numbers stay as written: a float64 would round an int64 past 2^53.
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", kind(obj), obj.GetName(), err)
	}
	delete(m, "status")
	y, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", kind(obj), obj.GetName(), err)
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
		names[i] = fmt.Sprintf("%0*d-%s-%s.yaml", width, 10*i, strings.ToLower(kind(obj)), obj.GetName())
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
	var obj metav1.PartialObjectMetadata
	if yaml.Unmarshal(data, &obj) != nil {
		return false
	}
	return strings.ToLower(obj.Kind) == kind && obj.Labels["app.kubernetes.io/name"] == app &&
		obj.Labels["app.kubernetes.io/managed-by"] == "dyno"
}

// kinds are the kinds Manifests makes, as file names spell them.
var kinds = []string{"secret", "job", "deployment", "service", "ingress"}

// IsSecret reports whether obj holds config vars, whose file only its
// owner should read.
func IsSecret(obj Object) bool { return kind(obj) == "Secret" }

func kind(obj Object) string { return obj.GetObjectKind().GroupVersionKind().Kind }
