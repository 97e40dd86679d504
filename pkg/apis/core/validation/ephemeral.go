package validation

import (
	"fmt"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ephemeralContainerFields are the fields of an ephemeral container that
// may be set. It lists what is allowed, as upstream does, so that a field
// new to containers stays forbidden here until considered: ephemeral
// containers must not take part in the pod's services (ports, probes,
// lifecycle hooks, resources, restart policies).
var ephemeralContainerFields = sets.New(
	"Name", "Image", "Command", "Args", "WorkingDir", "EnvFrom", "Env", "VolumeMounts", "VolumeDevices",
	"TerminationMessagePath", "TerminationMessagePolicy", "ImagePullPolicy", "SecurityContext",
	"Stdin", "StdinOnce", "TTY",
)

const notForEphemeral = "cannot be set for an Ephemeral Container"

// ValidatePodEphemeralContainersUpdate validates an update through
// pods/ephemeralcontainers, after which pod and old differ at most in
// their metadata and spec.ephemeralContainers: the pod must stay valid,
// static (mirror) pods take none, and existing ephemeral containers may be
// neither removed nor changed.
func ValidatePodEphemeralContainersUpdate(pod, old *corev1.Pod) field.ErrorList {
	errs := validatePodSpecForPod(pod)
	errs = append(errs, validateEphemeralContainers(&pod.Spec, &pod.ObjectMeta, field.NewPath("spec", "ephemeralContainers"))...)
	if _, mirror := old.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return field.ErrorList{field.Forbidden(field.NewPath(""), "static pods do not support ephemeral containers")}
	}
	// A patch may reorder the list: match the containers by name.
	byName := map[string]*corev1.EphemeralContainer{}
	for i := range pod.Spec.EphemeralContainers {
		byName[pod.Spec.EphemeralContainers[i].Name] = &pod.Spec.EphemeralContainers[i]
	}
	p := field.NewPath("spec", "ephemeralContainers")
	for _, o := range old.Spec.EphemeralContainers {
		switch n, ok := byName[o.Name]; {
		case !ok:
			errs = append(errs, field.Forbidden(p, fmt.Sprintf("existing ephemeral containers %q may not be removed\n", o.Name)))
		case !apiequality.Semantic.DeepEqual(o, *n):
			errs = append(errs, field.Forbidden(p, fmt.Sprintf("existing ephemeral containers %q may not be changed\n%v", o.Name, diff.Diff(o, *n))))
		}
	}
	return errs
}

// validateEphemeralContainers checks the ephemeral containers of a pod
// spec: valid as containers, named uniquely across all containers,
// targeting a regular or init container, and setting only the allowed
// fields (and no volume subpaths, whose bind mounts would outlive them).
func validateEphemeralContainers(spec *corev1.PodSpec, podMeta *metav1.ObjectMeta, fldPath *field.Path) field.ErrorList {
	if len(spec.EphemeralContainers) == 0 {
		return nil
	}
	var errs field.ErrorList
	// The volumes' errors are the pod spec's.
	vols, _ := validateVolumes(spec.Volumes, podMeta, field.NewPath("spec", "volumes"))
	podClaims := sets.New[string]()
	for _, c := range spec.ResourceClaims {
		podClaims.Insert(c.Name)
	}
	hostUsers := spec.HostUsers == nil || *spec.HostUsers
	others := sets.New[string]()
	for _, c := range spec.Containers {
		others.Insert(c.Name)
	}
	for _, c := range spec.InitContainers {
		others.Insert(c.Name)
	}
	all := others.Clone()
	for i := range spec.EphemeralContainers {
		ec := &spec.EphemeralContainers[i]
		p := fldPath.Index(i)
		// EphemeralContainerCommon has exactly Container's fields.
		ctr := (*corev1.Container)(&ec.EphemeralContainerCommon)
		errs = append(errs, validateContainerCommon(ctr, vols, podClaims, p, spec.RestartPolicy, hostUsers)...)
		if len(ctr.Image) != len(strings.TrimSpace(ctr.Image)) {
			errs = append(errs, field.Invalid(p.Child("image"), ctr.Image, "must not have leading or trailing whitespace"))
		}
		if all.Has(ec.Name) {
			errs = append(errs, field.Duplicate(p.Child("name"), ec.Name))
		} else {
			all.Insert(ec.Name)
		}
		if ec.TargetContainerName != "" && !others.Has(ec.TargetContainerName) {
			errs = append(errs, field.NotFound(p.Child("targetContainerName"), ec.TargetContainerName))
		}
		errs = append(errs, forbidUnlistedFields(ec.EphemeralContainerCommon, ephemeralContainerFields, p)...)
		for j, m := range ec.VolumeMounts {
			if m.SubPath != "" {
				errs = append(errs, field.Forbidden(p.Child("volumeMounts").Index(j).Child("subPath"), notForEphemeral))
			}
			if m.SubPathExpr != "" {
				errs = append(errs, field.Forbidden(p.Child("volumeMounts").Index(j).Child("subPathExpr"), notForEphemeral))
			}
		}
	}
	return errs
}

// forbidUnlistedFields reports each field of the struct value that is set
// (not its zero value) but not in allowed, by its JSON-style name.
func forbidUnlistedFields(value any, allowed sets.Set[string], fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	v := reflect.ValueOf(value)
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Name
		if allowed.Has(name) || v.Field(i).IsZero() {
			continue
		}
		r, n := utf8.DecodeRuneInString(name)
		errs = append(errs, field.Forbidden(fldPath.Child(string(unicode.ToLower(r))+name[n:]), notForEphemeral))
	}
	return errs
}
