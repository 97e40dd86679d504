// Package framework is the scheduler's plugin API, after upstream
// kube-scheduler's framework: a scheduling cycle runs the PreFilter, Filter,
// PostFilter, PreScore, Score, Reserve and Permit extension points for one
// pod against a snapshot of NodeInfos, and a binding cycle runs PreBind,
// Bind and PostBind. Plugins are built by a PluginFactory from their
// arguments (upstream's k8s.io/kube-scheduler/config/v1 *Args types) and a
// Handle onto the scheduler.
package framework
