package main

import (
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Minimal typed schemas of the custom resources the charts here render, from the Prometheus Operator's
// monitoring.coreos.com/v1 API reference. Decoded with unknown fields disallowed, so a misspelled field fails just
// as it would for a built-in kind. Nested objects this project never sets (TLS, auth, proxies) are json.RawMessage:
// present is fine, their inside is not checked.
var customResources = map[schema.GroupVersionKind]func() any{
	{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}: func() any { return &ServiceMonitor{} },
	{Group: "monitoring.coreos.com", Version: "v1", Kind: "PrometheusRule"}: func() any { return &PrometheusRule{} },
}

type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ServiceMonitorSpec `json:"spec"`
}

type ServiceMonitorSpec struct {
	JobLabel              string               `json:"jobLabel,omitempty"`
	TargetLabels          []string             `json:"targetLabels,omitempty"`
	PodTargetLabels       []string             `json:"podTargetLabels,omitempty"`
	Endpoints             []Endpoint           `json:"endpoints"`
	Selector              metav1.LabelSelector `json:"selector"`
	SelectorMechanism     string               `json:"selectorMechanism,omitempty"`
	NamespaceSelector     *NamespaceSelector   `json:"namespaceSelector,omitempty"`
	SampleLimit           *uint64              `json:"sampleLimit,omitempty"`
	TargetLimit           *uint64              `json:"targetLimit,omitempty"`
	LabelLimit            *uint64              `json:"labelLimit,omitempty"`
	LabelNameLengthLimit  *uint64              `json:"labelNameLengthLimit,omitempty"`
	LabelValueLengthLimit *uint64              `json:"labelValueLengthLimit,omitempty"`
	KeepDroppedTargets    *uint64              `json:"keepDroppedTargets,omitempty"`
	ScrapeClass           string               `json:"scrapeClass,omitempty"`
	ScrapeProtocols       []string             `json:"scrapeProtocols,omitempty"`
	AttachMetadata        json.RawMessage      `json:"attachMetadata,omitempty"`
	BodySizeLimit         string               `json:"bodySizeLimit,omitempty"`
}

type NamespaceSelector struct {
	Any        bool     `json:"any,omitempty"`
	MatchNames []string `json:"matchNames,omitempty"`
}

type Endpoint struct {
	Port              string              `json:"port,omitempty"`
	TargetPort        *intstr.IntOrString `json:"targetPort,omitempty"`
	Path              string              `json:"path,omitempty"`
	Scheme            string              `json:"scheme,omitempty"`
	Params            map[string][]string `json:"params,omitempty"`
	Interval          string              `json:"interval,omitempty"`
	ScrapeTimeout     string              `json:"scrapeTimeout,omitempty"`
	HonorLabels       bool                `json:"honorLabels,omitempty"`
	HonorTimestamps   *bool               `json:"honorTimestamps,omitempty"`
	FollowRedirects   *bool               `json:"followRedirects,omitempty"`
	EnableHTTP2       *bool               `json:"enableHttp2,omitempty"`
	FilterRunning     *bool               `json:"filterRunning,omitempty"`
	MetricRelabelings []RelabelConfig     `json:"metricRelabelings,omitempty"`
	Relabelings       []RelabelConfig     `json:"relabelings,omitempty"`
	TLSConfig         json.RawMessage     `json:"tlsConfig,omitempty"`
	Authorization     json.RawMessage     `json:"authorization,omitempty"`
	BasicAuth         json.RawMessage     `json:"basicAuth,omitempty"`
	OAuth2            json.RawMessage     `json:"oauth2,omitempty"`
	BearerTokenSecret json.RawMessage     `json:"bearerTokenSecret,omitempty"`
	ProxyURL          string              `json:"proxyUrl,omitempty"`
}

type RelabelConfig struct {
	SourceLabels []string `json:"sourceLabels,omitempty"`
	Separator    *string  `json:"separator,omitempty"`
	TargetLabel  string   `json:"targetLabel,omitempty"`
	Regex        string   `json:"regex,omitempty"`
	Modulus      uint64   `json:"modulus,omitempty"`
	Replacement  *string  `json:"replacement,omitempty"`
	Action       string   `json:"action,omitempty"`
}

type PrometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []RuleGroup `json:"groups"`
	} `json:"spec"`
}

type RuleGroup struct {
	Name                    string            `json:"name"`
	Interval                string            `json:"interval,omitempty"`
	QueryOffset             string            `json:"query_offset,omitempty"`
	Limit                   *int              `json:"limit,omitempty"`
	Labels                  map[string]string `json:"labels,omitempty"`
	PartialResponseStrategy string            `json:"partial_response_strategy,omitempty"`
	Rules                   []Rule            `json:"rules"`
}

type Rule struct {
	Record        string             `json:"record,omitempty"`
	Alert         string             `json:"alert,omitempty"`
	Expr          intstr.IntOrString `json:"expr"`
	For           string             `json:"for,omitempty"`
	KeepFiringFor string             `json:"keep_firing_for,omitempty"`
	Labels        map[string]string  `json:"labels,omitempty"`
	Annotations   map[string]string  `json:"annotations,omitempty"`
}
