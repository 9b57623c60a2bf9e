// Command k8s-validate checks rendered Kubernetes manifests offline, strictly, against the Kubernetes API types:
//
//	k8s-validate FILE...        (FILE may be "-" for standard input; multi-document YAML)
//
// Every YAML document is decoded into its typed object (client-go's scheme: core, apps, policy, autoscaling,
// networking, ...) with a strict decoder: an unknown or misspelled field, a duplicated key or a value of the wrong
// type fails the document. Custom resources the charts here render (the Prometheus Operator's ServiceMonitor and
// PrometheusRule) are decoded the same way into minimal structs of their documented fields. Any other kind fails:
// nothing is passed unchecked. On top of the types, a few checks the API server would also make: object names,
// label keys and values, container, port and environment variable names, and volume mounts that name a volume of
// the pod.
//
// Prints one line per document and exits 1 when any document fails.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

type result struct {
	ok   bool
	what string
	err  error
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: k8s-validate FILE... (\"-\" reads standard input)")
		os.Exit(2)
	}
	decoder := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, kjson.SerializerOptions{Strict: true})
	failed, total := 0, 0
	for _, name := range os.Args[1:] {
		docs, err := readDocuments(name)
		if err != nil {
			fmt.Printf("FAIL %s: %v\n", name, err)
			failed++
			continue
		}
		for i, doc := range docs {
			total++
			r := validateDocument(decoder, doc)
			where := fmt.Sprintf("%s#%d", name, i+1)
			if r.ok {
				fmt.Printf("ok   %s %s\n", where, r.what)
			} else {
				failed++
				fmt.Printf("FAIL %s %s: %v\n", where, r.what, r.err)
			}
		}
	}
	fmt.Printf("%d documents, %d failed\n", total, failed)
	if failed > 0 || total == 0 {
		if total == 0 {
			fmt.Println("FAIL no documents")
		}
		os.Exit(1)
	}
}

// readDocuments splits a multi-document YAML stream; documents holding only comments or nothing are dropped.
func readDocuments(name string) ([][]byte, error) {
	var in io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(in))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if hasContent(doc) {
			docs = append(docs, doc)
		}
	}
}

func hasContent(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") && t != "---" {
			return true
		}
	}
	return false
}

func validateDocument(decoder runtime.Decoder, doc []byte) result {
	// Strict YAML to JSON: a key given twice in one mapping is an error (the API server's decoder agrees).
	data, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return result{what: "(unparsed)", err: err}
	}
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		return result{what: "(no object)", err: fmt.Errorf("not an object: %w", err)}
	}
	what := fmt.Sprintf("%s %s %s", meta.APIVersion, meta.Kind, meta.Metadata.Name)
	if meta.APIVersion == "" || meta.Kind == "" {
		return result{what: what, err: errors.New("apiVersion and kind are required")}
	}
	gv, err := schema.ParseGroupVersion(meta.APIVersion)
	if err != nil {
		return result{what: what, err: err}
	}
	gvk := gv.WithKind(meta.Kind)

	var obj any
	if scheme.Scheme.Recognizes(gvk) {
		decoded, _, err := decoder.Decode(data, nil, nil)
		if err != nil {
			return result{what: what, err: err}
		}
		obj = decoded
	} else if custom, ok := customResources[gvk]; ok {
		target := custom()
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(target); err != nil {
			return result{what: what, err: fmt.Errorf("%s (custom resource, minimal schema): %w", gvk.Kind, err)}
		}
		obj = target
	} else {
		return result{what: what, err: fmt.Errorf("unknown kind %s: not in client-go's scheme nor a known custom resource", gvk)}
	}

	errs := checkObject(obj, meta.Metadata.Name)
	if len(errs) > 0 {
		return result{what: what, err: errs.ToAggregate()}
	}
	return result{ok: true, what: what}
}

// checkObject runs the API server's checks that are cheap to make offline.
func checkObject(obj any, name string) field.ErrorList {
	var errs field.ErrorList
	metaPath := field.NewPath("metadata")
	if name == "" {
		errs = append(errs, field.Required(metaPath.Child("name"), ""))
	} else {
		for _, msg := range validation.IsDNS1123Subdomain(name) {
			errs = append(errs, field.Invalid(metaPath.Child("name"), name, msg))
		}
	}
	if accessor, ok := obj.(interface {
		GetLabels() map[string]string
		GetAnnotations() map[string]string
	}); ok {
		errs = append(errs, metav1validation.ValidateLabels(accessor.GetLabels(), metaPath.Child("labels"))...)
		for key := range accessor.GetAnnotations() {
			for _, msg := range validation.IsQualifiedName(strings.ToLower(key)) {
				errs = append(errs, field.Invalid(metaPath.Child("annotations"), key, msg))
			}
		}
	}
	specPath := field.NewPath("spec")
	switch o := obj.(type) {
	case *corev1.Pod:
		errs = append(errs, checkPodSpec(&o.Spec, specPath)...)
	case *appsv1.Deployment:
		errs = append(errs, checkTemplate(o.Spec.Selector.MatchLabels, &o.Spec.Template, specPath)...)
	case *appsv1.StatefulSet:
		errs = append(errs, checkTemplate(o.Spec.Selector.MatchLabels, &o.Spec.Template, specPath)...)
	case *appsv1.DaemonSet:
		errs = append(errs, checkTemplate(o.Spec.Selector.MatchLabels, &o.Spec.Template, specPath)...)
	case *batchv1.Job:
		errs = append(errs, checkPodSpec(&o.Spec.Template.Spec, specPath.Child("template", "spec"))...)
	case *corev1.Service:
		for i, p := range o.Spec.Ports {
			if p.Name != "" {
				for _, msg := range validation.IsDNS1123Label(p.Name) {
					errs = append(errs, field.Invalid(specPath.Child("ports").Index(i).Child("name"), p.Name, msg))
				}
			}
		}
	}
	return errs
}

// checkTemplate: the selector must match the template's labels, and the pod spec must hold together.
func checkTemplate(selector map[string]string, template *corev1.PodTemplateSpec, specPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	labelsPath := specPath.Child("template", "metadata", "labels")
	errs = append(errs, metav1validation.ValidateLabels(template.Labels, labelsPath)...)
	for k, v := range selector {
		if template.Labels[k] != v {
			errs = append(errs, field.Invalid(labelsPath, template.Labels, fmt.Sprintf("selector %s=%s does not match the template's labels", k, v)))
		}
	}
	return append(errs, checkPodSpec(&template.Spec, specPath.Child("template", "spec"))...)
}

func checkPodSpec(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	volumes := map[string]bool{}
	for i, v := range spec.Volumes {
		if volumes[v.Name] {
			errs = append(errs, field.Duplicate(path.Child("volumes").Index(i).Child("name"), v.Name))
		}
		volumes[v.Name] = true
	}
	names := map[string]bool{}
	check := func(c *corev1.Container, p *field.Path) {
		for _, msg := range validation.IsDNS1123Label(c.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), c.Name, msg))
		}
		if names[c.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
		}
		names[c.Name] = true
		if c.Image == "" {
			errs = append(errs, field.Required(p.Child("image"), ""))
		}
		ports := map[string]bool{}
		for j, port := range c.Ports {
			if port.Name == "" {
				continue
			}
			for _, msg := range validation.IsValidPortName(port.Name) {
				errs = append(errs, field.Invalid(p.Child("ports").Index(j).Child("name"), port.Name, msg))
			}
			ports[port.Name] = true
		}
		for j, env := range c.Env {
			for _, msg := range validation.IsEnvVarName(env.Name) {
				errs = append(errs, field.Invalid(p.Child("env").Index(j).Child("name"), env.Name, msg))
			}
		}
		for j, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				errs = append(errs, field.NotFound(p.Child("volumeMounts").Index(j).Child("name"), m.Name))
			}
		}
		for probeName, probe := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe, "startupProbe": c.StartupProbe} {
			if probe == nil {
				continue
			}
			handlers := 0
			if probe.Exec != nil {
				handlers++
			}
			if probe.HTTPGet != nil {
				handlers++
				if port := probe.HTTPGet.Port; port.StrVal != "" && !ports[port.StrVal] {
					errs = append(errs, field.NotFound(p.Child(probeName, "httpGet", "port"), port.StrVal))
				}
			}
			if probe.TCPSocket != nil {
				handlers++
			}
			if probe.GRPC != nil {
				handlers++
			}
			if handlers != 1 {
				errs = append(errs, field.Invalid(p.Child(probeName), handlers, "must have exactly one handler"))
			}
		}
	}
	for i := range spec.InitContainers {
		check(&spec.InitContainers[i], path.Child("initContainers").Index(i))
	}
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(path.Child("containers"), ""))
	}
	for i := range spec.Containers {
		check(&spec.Containers[i], path.Child("containers").Index(i))
	}
	return errs
}
