// Package queryparams decodes the query parameters of the core group's
// option kinds (PodLogOptions, PodExecOptions, PodAttachOptions,
// PodPortForwardOptions and the pod, node and service proxy options) as
// upstream's generated url.Values conversions do: the generic apiserver
// decodes the options of pods/log, pods/exec, ... through the scheme, and
// k8s.io/api carries no such conversions.
package queryparams

import (
	"net/url"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	"github.com/skiff-dev/skiff/pkg/apis"
)

// The served scheme decodes these options from the start; AddToScheme is
// for other schemes.
func init() { utilruntime.Must(AddToScheme(apis.Scheme)) }

// AddToScheme registers the url.Values conversions of the option kinds.
func AddToScheme(s *runtime.Scheme) error {
	add := func(out interface{}, convert func(in url.Values, out interface{}, scope conversion.Scope) error) error {
		return s.AddConversionFunc((*url.Values)(nil), out, func(a, b interface{}, scope conversion.Scope) error {
			return convert(*a.(*url.Values), b, scope)
		})
	}
	for _, c := range []struct {
		out     interface{}
		convert func(url.Values, interface{}, conversion.Scope) error
	}{
		{(*corev1.PodLogOptions)(nil), func(in url.Values, out interface{}, s conversion.Scope) error {
			return podLogOptions(in, out.(*corev1.PodLogOptions), s)
		}},
		{(*corev1.PodExecOptions)(nil), func(in url.Values, out interface{}, s conversion.Scope) error {
			return podExecOptions(in, out.(*corev1.PodExecOptions), s)
		}},
		{(*corev1.PodAttachOptions)(nil), func(in url.Values, out interface{}, s conversion.Scope) error {
			return podAttachOptions(in, out.(*corev1.PodAttachOptions), s)
		}},
		{(*corev1.PodPortForwardOptions)(nil), func(in url.Values, out interface{}, s conversion.Scope) error {
			o := out.(*corev1.PodPortForwardOptions)
			o.Ports = nil
			return slice(in, "ports", &o.Ports, metav1.Convert_Slice_string_To_Slice_int32, s)
		}},
		{(*corev1.PodProxyOptions)(nil), func(in url.Values, out interface{}, s conversion.Scope) error {
			o := out.(*corev1.PodProxyOptions)
			o.Path = ""
			return slice(in, "path", &o.Path, runtime.Convert_Slice_string_To_string, s)
		}},
		{(*corev1.NodeProxyOptions)(nil), func(in url.Values, out interface{}, s conversion.Scope) error {
			o := out.(*corev1.NodeProxyOptions)
			o.Path = ""
			return slice(in, "path", &o.Path, runtime.Convert_Slice_string_To_string, s)
		}},
		{(*corev1.ServiceProxyOptions)(nil), func(in url.Values, out interface{}, s conversion.Scope) error {
			o := out.(*corev1.ServiceProxyOptions)
			o.Path = ""
			return slice(in, "path", &o.Path, runtime.Convert_Slice_string_To_string, s)
		}},
	} {
		if err := add(c.out, c.convert); err != nil {
			return err
		}
	}
	return nil
}

// slice converts in[key] into out when it has a value; out keeps its
// (reset) zero value otherwise.
func slice[T any](in url.Values, key string, out *T, convert func(*[]string, *T, conversion.Scope) error, s conversion.Scope) error {
	values, ok := in[key]
	if !ok || len(values) == 0 {
		return nil
	}
	return convert(&values, out, s)
}

func podLogOptions(in url.Values, out *corev1.PodLogOptions, s conversion.Scope) error {
	*out = corev1.PodLogOptions{TypeMeta: out.TypeMeta}
	for _, err := range []error{
		slice(in, "container", &out.Container, runtime.Convert_Slice_string_To_string, s),
		slice(in, "follow", &out.Follow, runtime.Convert_Slice_string_To_bool, s),
		slice(in, "previous", &out.Previous, runtime.Convert_Slice_string_To_bool, s),
		slice(in, "sinceSeconds", &out.SinceSeconds, runtime.Convert_Slice_string_To_Pointer_int64, s),
		slice(in, "sinceTime", &out.SinceTime, metav1.Convert_Slice_string_To_Pointer_v1_Time, s),
		slice(in, "timestamps", &out.Timestamps, runtime.Convert_Slice_string_To_bool, s),
		slice(in, "tailLines", &out.TailLines, runtime.Convert_Slice_string_To_Pointer_int64, s),
		slice(in, "limitBytes", &out.LimitBytes, runtime.Convert_Slice_string_To_Pointer_int64, s),
		slice(in, "insecureSkipTLSVerifyBackend", &out.InsecureSkipTLSVerifyBackend, runtime.Convert_Slice_string_To_bool, s),
		slice(in, "stream", &out.Stream, stringPointer, s),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

func podExecOptions(in url.Values, out *corev1.PodExecOptions, s conversion.Scope) error {
	*out = corev1.PodExecOptions{TypeMeta: out.TypeMeta}
	for _, err := range []error{
		slice(in, "stdin", &out.Stdin, runtime.Convert_Slice_string_To_bool, s),
		slice(in, "stdout", &out.Stdout, runtime.Convert_Slice_string_To_bool, s),
		slice(in, "stderr", &out.Stderr, runtime.Convert_Slice_string_To_bool, s),
		slice(in, "tty", &out.TTY, runtime.Convert_Slice_string_To_bool, s),
		slice(in, "container", &out.Container, runtime.Convert_Slice_string_To_string, s),
	} {
		if err != nil {
			return err
		}
	}
	if command, ok := in["command"]; ok {
		out.Command = append([]string(nil), command...)
	}
	return nil
}

func podAttachOptions(in url.Values, out *corev1.PodAttachOptions, s conversion.Scope) error {
	*out = corev1.PodAttachOptions{TypeMeta: out.TypeMeta}
	for _, err := range []error{
		slice(in, "stdin", &out.Stdin, runtime.Convert_Slice_string_To_bool, s),
		slice(in, "stdout", &out.Stdout, runtime.Convert_Slice_string_To_bool, s),
		slice(in, "stderr", &out.Stderr, runtime.Convert_Slice_string_To_bool, s),
		slice(in, "tty", &out.TTY, runtime.Convert_Slice_string_To_bool, s),
		slice(in, "container", &out.Container, runtime.Convert_Slice_string_To_string, s),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

func stringPointer(in *[]string, out **string, _ conversion.Scope) error {
	if len(*in) == 0 {
		*out = nil
		return nil
	}
	v := (*in)[0]
	*out = &v
	return nil
}
