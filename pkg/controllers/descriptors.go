package controllers

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/sets"
	cmapp "k8s.io/controller-manager/app"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// A Descriptor is one controller, under upstream kube-controller-manager's
// name for it (what --controllers takes).
type Descriptor struct {
	// Name is upstream's, e.g. "replicaset-controller".
	Name string
	// Identity is the ServiceAccount in kube-system it runs as with
	// --use-service-account-credentials (upstream's, e.g.
	// "replicaset-controller"; several controllers may share one), bound
	// to system:controller:<Identity> by the bootstrap policy.
	Identity string
	// DisabledByDefault: "*" leaves it out; only its name turns it on.
	DisabledByDefault bool
	// Setup adds the controller to mgr, with its identity's clients.
	Setup func(mgr manager.Manager, c *Clients, opts Options) error
	// Concurrency, if set, is its --concurrent-*-syncs flag; Setup reads
	// the value with opts.Workers(Name, Concurrency.Default).
	Concurrency *ConcurrencyFlag
	// Flags are its other int flags, upstream's (e.g.
	// --max-endpoints-per-slice); Setup reads them with
	// opts.Int(Flag, Default).
	Flags []IntFlag
	// AddFlags, if set, registers its flags of other types (durations,
	// floats) on fs, bound to where its Setup reads them; ValidateFlags
	// then refuses bad values in upstream's words.
	AddFlags      func(fs *pflag.FlagSet)
	ValidateFlags func() []error
}

// ConcurrencyFlag is upstream's flag for a controller's number of workers.
type ConcurrencyFlag struct {
	Flag    string // e.g. "concurrent-replicaset-syncs"
	Default int
	Usage   string
	// Max, if set, is upstream's upper bound (1..Max, refused in its
	// words); otherwise any positive number.
	Max int
}

// Validate refuses n in upstream's words.
func (f ConcurrencyFlag) Validate(n int) error {
	if f.Max > 0 {
		return IntFlag{Flag: f.Flag, Min: 1, Max: f.Max}.Validate(n)
	}
	if n <= 0 {
		return fmt.Errorf("%s must be greater than 0, but got %d", f.Flag, n)
	}
	return nil
}

// IntFlag is one of upstream's int flags of a controller.
type IntFlag struct {
	Flag    string // e.g. "max-endpoints-per-slice"
	Default int
	Usage   string
	// Min and Max, if Max > Min, bound it as upstream does.
	Min, Max int
}

// Validate refuses n out of [Min, Max] in upstream's words.
func (f IntFlag) Validate(n int) error {
	if f.Max <= f.Min {
		return nil
	}
	if n < f.Min {
		return fmt.Errorf("%s must not be less than %d, but got %d", f.Flag, f.Min, n)
	}
	if n > f.Max {
		return fmt.Errorf("%s must not be more than %d, but got %d", f.Flag, f.Max, n)
	}
	return nil
}

var descriptors []Descriptor

// register adds a controller; each controller's file calls it from init.
func register(d Descriptor) {
	if d.Name == "" || d.Identity == "" || d.Setup == nil || (d.Concurrency != nil && (d.Concurrency.Flag == "" || d.Concurrency.Default <= 0)) ||
		slices.ContainsFunc(d.Flags, func(f IntFlag) bool { return f.Flag == "" }) {
		panic(fmt.Sprintf("controller descriptor %+v is incomplete", d))
	}
	if slices.ContainsFunc(descriptors, func(o Descriptor) bool { return o.Name == d.Name }) {
		panic("controller " + d.Name + " registered twice")
	}
	descriptors = append(descriptors, d)
}

// Descriptors are every controller skiff has, in registration order.
func Descriptors() []Descriptor { return slices.Clone(descriptors) }

// KnownControllers are their names, sorted, and those disabled by default.
func KnownControllers() (all, disabledByDefault []string) {
	for _, d := range descriptors {
		all = append(all, d.Name)
		if d.DisabledByDefault {
			disabledByDefault = append(disabledByDefault, d.Name)
		}
	}
	slices.Sort(all)
	slices.Sort(disabledByDefault)
	return all, disabledByDefault
}

// ControllersFlagUsage is the help of --controllers, upstream's text.
func ControllersFlagUsage() string {
	all, off := KnownControllers()
	return "A list of controllers to enable. '*' enables all on-by-default controllers, 'foo' enables the controller " +
		"named 'foo', '-foo' disables the controller named 'foo'.\nAll controllers: " + strings.Join(all, ", ") +
		"\nDisabled-by-default controllers: " + strings.Join(off, ", ")
}

// ValidateControllers refuses names that are no controller's, in
// upstream's words.
func ValidateControllers(names []string) []error {
	all, _ := KnownControllers()
	var errs []error
	for _, n := range names {
		if n == "*" {
			continue
		}
		if bare := strings.TrimPrefix(n, "-"); !slices.Contains(all, bare) {
			errs = append(errs, fmt.Errorf("%q is not in the list of known controllers", bare))
		}
	}
	return errs
}

// Enabled says whether --controllers turns d on.
func (o Options) Enabled(d Descriptor) bool {
	list := o.Controllers
	if len(list) == 0 {
		list = []string{"*"}
	}
	off := sets.NewString()
	if d.DisabledByDefault {
		off.Insert(d.Name)
	}
	return cmapp.IsControllerEnabled(d.Name, off, list)
}

// Int is the value of a controller's int flag (Descriptor.Flags), else
// def.
func (o Options) Int(flag string, def int) int {
	if n, ok := o.IntFlags[flag]; ok {
		return n
	}
	return def
}

// Workers is the number of concurrent syncs of the controller name: its
// --concurrent-*-syncs flag, else def.
func (o Options) Workers(name string, def int) int {
	if n, ok := o.ConcurrentSyncs[name]; ok && n > 0 {
		return n
	}
	return def
}
