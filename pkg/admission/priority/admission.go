// Package priority is upstream's Priority admission plugin: a pod's
// spec.priorityClassName resolves to spec.priority and spec.preemptionPolicy
// from that PriorityClass (the globalDefault class, else priority 0 and
// PreemptLowerPriority, when it names none); a missing class or a
// conflicting priority/preemptionPolicy in the spec is refused; at most one
// PriorityClass may be globalDefault.
package priority

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	schedulinglisters "k8s.io/client-go/listers/scheduling/v1"
)

const (
	// PluginName is the plugin's name in upstream's admission chain.
	PluginName = "Priority"
	// DefaultPriorityWhenNoDefaultClassExists is a pod's priority when it
	// names no class and no class is globalDefault.
	DefaultPriorityWhenNoDefaultClassExists = 0
)

// Plugin is the Priority admission plugin.
type Plugin struct {
	*admission.Handler
	client kubernetes.Interface
	lister schedulinglisters.PriorityClassLister
}

var (
	_ admission.MutationInterface   = &Plugin{}
	_ admission.ValidationInterface = &Plugin{}

	podResource           = corev1.Resource("pods")
	priorityClassResource = schedulingv1.Resource("priorityclasses")
)

// New returns the plugin reading PriorityClasses from factory (started by
// the caller) and, for a class not cached yet, through client.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory) *Plugin {
	informer := factory.Scheduling().V1().PriorityClasses()
	p := &Plugin{Handler: admission.NewHandler(admission.Create, admission.Update, admission.Delete), client: client, lister: informer.Lister()}
	p.SetReadyFunc(informer.Informer().HasSynced)
	return p
}

// Admit resolves the priority of created pods and keeps it on updates.
func (p *Plugin) Admit(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetSubresource() != "" || a.GetResource().GroupResource() != podResource {
		return nil
	}
	switch a.GetOperation() {
	case admission.Create, admission.Update:
		if !p.WaitForReady() {
			return admission.NewForbidden(a, fmt.Errorf("not yet ready to handle request"))
		}
		return p.admitPod(a)
	}
	return nil
}

// Validate allows a single globalDefault PriorityClass.
func (p *Plugin) Validate(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetSubresource() != "" || a.GetResource().GroupResource() != priorityClassResource {
		return nil
	}
	op := a.GetOperation()
	if op != admission.Create && op != admission.Update {
		return nil
	}
	pc, ok := a.GetObject().(*schedulingv1.PriorityClass)
	if !ok {
		return apierrors.NewBadRequest("resource was marked with kind PriorityClass but was unable to be converted")
	}
	if !pc.GlobalDefault {
		return nil
	}
	dpc, err := p.defaultClass()
	if err != nil {
		return fmt.Errorf("failed to get default priority class: %v", err)
	}
	if dpc != nil && (op == admission.Create || dpc.Name != pc.Name) {
		return admission.NewForbidden(a, fmt.Errorf("PriorityClass %v is already marked as default. Only one default can exist", dpc.Name))
	}
	return nil
}

func (p *Plugin) admitPod(a admission.Attributes) error {
	pod, ok := a.GetObject().(*corev1.Pod)
	if !ok {
		return apierrors.NewBadRequest("resource was marked with kind Pod but was unable to be converted")
	}
	if a.GetOperation() == admission.Update {
		old, ok := a.GetOldObject().(*corev1.Pod)
		if !ok {
			return apierrors.NewBadRequest("resource was marked with kind Pod but was unable to be converted")
		}
		if pod.Spec.Priority == nil && old.Spec.Priority != nil {
			pod.Spec.Priority = old.Spec.Priority
		}
		if pod.Spec.PreemptionPolicy == nil && old.Spec.PreemptionPolicy != nil {
			pod.Spec.PreemptionPolicy = old.Spec.PreemptionPolicy
		}
		return nil
	}
	name, priority, policy, err := p.establish(a, pod.Spec.PriorityClassName)
	if err != nil {
		return err
	}
	pod.Spec.PriorityClassName = name
	if pod.Spec.Priority != nil && *pod.Spec.Priority != priority {
		return admission.NewForbidden(a, fmt.Errorf("the integer value of priority (%d) must not be provided in pod spec; priority admission controller computed %d from the given PriorityClass name", *pod.Spec.Priority, priority))
	}
	pod.Spec.Priority = &priority
	if policy != nil {
		if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy != *policy {
			return admission.NewForbidden(a, fmt.Errorf("the string value of PreemptionPolicy (%s) must not be provided in pod spec; priority admission controller computed %s from the given PriorityClass name", *pod.Spec.PreemptionPolicy, *policy))
		}
		pod.Spec.PreemptionPolicy = policy
	}
	return nil
}

func (p *Plugin) establish(a admission.Attributes, className string) (string, int32, *corev1.PreemptionPolicy, error) {
	if className == "" {
		dpc, err := p.defaultClass()
		if err != nil {
			return "", 0, nil, fmt.Errorf("error occurred while retrieving default priority class: %w", err)
		}
		if dpc != nil {
			return dpc.Name, dpc.Value, copyPolicy(dpc.PreemptionPolicy), nil
		}
		policy := corev1.PreemptLowerPriority
		return "", DefaultPriorityWhenNoDefaultClassExists, &policy, nil
	}
	pc, err := p.lister.Get(className)
	if apierrors.IsNotFound(err) && p.client != nil {
		// The informer may lag behind a class created just before.
		pc, err = p.client.SchedulingV1().PriorityClasses().Get(context.TODO(), className, metav1.GetOptions{})
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return "", 0, nil, admission.NewForbidden(a, fmt.Errorf("no PriorityClass with name %v was found", className))
		}
		return "", 0, nil, fmt.Errorf("failed to resolve PriorityClass with name %s: %w", className, err)
	}
	return className, pc.Value, copyPolicy(pc.PreemptionPolicy), nil
}

func copyPolicy(p *corev1.PreemptionPolicy) *corev1.PreemptionPolicy {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

// defaultClass is the globalDefault class of lowest value, if any.
func (p *Plugin) defaultClass() (*schedulingv1.PriorityClass, error) {
	list, err := p.lister.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var dpc *schedulingv1.PriorityClass
	for _, pc := range list {
		if pc.GlobalDefault && (dpc == nil || dpc.Value > pc.Value) {
			dpc = pc
		}
	}
	return dpc, nil
}
