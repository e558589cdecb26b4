package kubernetes

// The Kubernetes objects Manifests makes, as the subset of the API's
// types (k8s.io/api core/v1, apps/v1, batch/v1, networking/v1) that
// they use: the same field names, JSON names and omitempty, so they
// encode as the API's own types do. The tests decode every document
// strictly into the API's types, so a field misspelt here, or one the
// API does not have, fails them.
//
// They are not the API's types because those, with the apimachinery
// they bring, made every start of the dyno binary, every dyno's init
// included, 7 ms slower and the binary 9 MB larger (package inits that
// register schemes, compile validators and build codecs), for five
// kinds of objects written by one command.

// An Object is one manifest.
type Object interface {
	header() *Header
}

// Header is what every object has: apiVersion, kind and metadata.
type Header struct {
	APIVersion string     `json:"apiVersion,omitempty"`
	Kind       string     `json:"kind,omitempty"`
	Metadata   ObjectMeta `json:"metadata"`
}

func (h *Header) header() *Header { return h }

// ObjectMeta is metav1.ObjectMeta's name, labels and annotations.
type ObjectMeta struct {
	Name        string            `json:"name,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Secret is core/v1 Secret.
type Secret struct {
	Header
	Type string            `json:"type,omitempty"`
	Data map[string][]byte `json:"data,omitempty"`
}

// Deployment is apps/v1 Deployment.
type Deployment struct {
	Header
	Spec DeploymentSpec `json:"spec"`
}

type DeploymentSpec struct {
	Replicas *int32          `json:"replicas,omitempty"`
	Selector *LabelSelector  `json:"selector"`
	Template PodTemplateSpec `json:"template"`
}

type LabelSelector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

type PodTemplateSpec struct {
	Metadata ObjectMeta `json:"metadata"`
	Spec     PodSpec    `json:"spec"`
}

type PodSpec struct {
	Containers                    []Container `json:"containers"`
	RestartPolicy                 string      `json:"restartPolicy,omitempty"`
	TerminationGracePeriodSeconds *int64      `json:"terminationGracePeriodSeconds,omitempty"`
	AutomountServiceAccountToken  *bool       `json:"automountServiceAccountToken,omitempty"`
	EnableServiceLinks            *bool       `json:"enableServiceLinks,omitempty"`
}

type Container struct {
	Name            string                `json:"name"`
	Image           string                `json:"image,omitempty"`
	Args            []string              `json:"args,omitempty"`
	Ports           []ContainerPort       `json:"ports,omitempty"`
	EnvFrom         []EnvFromSource       `json:"envFrom,omitempty"`
	Env             []EnvVar              `json:"env,omitempty"`
	Resources       *ResourceRequirements `json:"resources,omitempty"`
	LivenessProbe   *Probe                `json:"livenessProbe,omitempty"`
	ReadinessProbe  *Probe                `json:"readinessProbe,omitempty"`
	StartupProbe    *Probe                `json:"startupProbe,omitempty"`
	SecurityContext *SecurityContext      `json:"securityContext,omitempty"`
}

type ContainerPort struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
}

type EnvFromSource struct {
	SecretRef *SecretEnvSource `json:"secretRef,omitempty"`
}

type SecretEnvSource struct {
	Name string `json:"name,omitempty"`
}

type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// ResourceRequirements' quantities are strings as the API writes them:
// see quantity.
type ResourceRequirements struct {
	Limits   map[string]string `json:"limits,omitempty"`
	Requests map[string]string `json:"requests,omitempty"`
}

// Probe is core/v1 Probe with a TCP handler, the only one used.
type Probe struct {
	TCPSocket        *TCPSocketAction `json:"tcpSocket,omitempty"`
	PeriodSeconds    int32            `json:"periodSeconds,omitempty"`
	FailureThreshold int32            `json:"failureThreshold,omitempty"`
}

// TCPSocketAction's port is a named port: the API's IntOrString holding
// a string encodes as that string.
type TCPSocketAction struct {
	Port string `json:"port"`
}

type SecurityContext struct {
	RunAsUser                *int64 `json:"runAsUser,omitempty"`
	RunAsGroup               *int64 `json:"runAsGroup,omitempty"`
	RunAsNonRoot             *bool  `json:"runAsNonRoot,omitempty"`
	AllowPrivilegeEscalation *bool  `json:"allowPrivilegeEscalation,omitempty"`
}

// Job is batch/v1 Job.
type Job struct {
	Header
	Spec JobSpec `json:"spec"`
}

type JobSpec struct {
	ActiveDeadlineSeconds *int64          `json:"activeDeadlineSeconds,omitempty"`
	BackoffLimit          *int32          `json:"backoffLimit,omitempty"`
	Template              PodTemplateSpec `json:"template"`
}

// Service is core/v1 Service.
type Service struct {
	Header
	Spec ServiceSpec `json:"spec"`
}

type ServiceSpec struct {
	Ports    []ServicePort     `json:"ports,omitempty"`
	Selector map[string]string `json:"selector,omitempty"`
	Type     string            `json:"type,omitempty"`
}

// ServicePort's targetPort is a named port, as TCPSocketAction's.
type ServicePort struct {
	Name       string `json:"name,omitempty"`
	Protocol   string `json:"protocol,omitempty"`
	Port       int32  `json:"port"`
	TargetPort string `json:"targetPort,omitempty"`
}

// Ingress is networking/v1 Ingress.
type Ingress struct {
	Header
	Spec IngressSpec `json:"spec"`
}

type IngressSpec struct {
	Rules []IngressRule `json:"rules,omitempty"`
}

type IngressRule struct {
	Host string                `json:"host,omitempty"`
	HTTP *HTTPIngressRuleValue `json:"http,omitempty"`
}

type HTTPIngressRuleValue struct {
	Paths []HTTPIngressPath `json:"paths"`
}

type HTTPIngressPath struct {
	Path     string         `json:"path,omitempty"`
	PathType *string        `json:"pathType"`
	Backend  IngressBackend `json:"backend"`
}

type IngressBackend struct {
	Service *IngressServiceBackend `json:"service,omitempty"`
}

type IngressServiceBackend struct {
	Name string             `json:"name"`
	Port ServiceBackendPort `json:"port"`
}

type ServiceBackendPort struct {
	Name   string `json:"name,omitempty"`
	Number int32  `json:"number,omitempty"`
}
