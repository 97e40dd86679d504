package storage

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericregistry "k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/storagebackend/factory"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/pkg/storage/watchbuffer"
)

// Guard wraps the storage of every resource of getter: bad input
// answered with 4xx (guardedStorage), watches drained promptly from the
// watch cache (watchbuffer explains why).
func Guard(getter genericregistry.RESTOptionsGetter) genericregistry.RESTOptionsGetter {
	return guardedOptions{getter}
}

type guardedOptions struct {
	genericregistry.RESTOptionsGetter
}

func (g guardedOptions) GetRESTOptions(resource schema.GroupResource, example runtime.Object) (genericregistry.RESTOptions, error) {
	opts, err := g.RESTOptionsGetter.GetRESTOptions(resource, example)
	if err != nil {
		return opts, err
	}
	decorate := opts.Decorator
	opts.Decorator = func(config *storagebackend.ConfigForResource, resourcePrefix string, keyFunc func(runtime.Object) (string, error),
		newFunc, newListFunc func() runtime.Object, attrs storage.AttrFunc, triggers storage.IndexerFuncs, indexers *cache.Indexers) (storage.Interface, factory.DestroyFunc, error) {
		s, destroy, err := decorate(config, resourcePrefix, keyFunc, newFunc, newListFunc, attrs, triggers, indexers)
		if err != nil {
			return s, destroy, err
		}
		return guardedStorage{Interface: watchbuffer.Wrap(s, resource.String()), resource: resource}, destroy, nil
	}
	return opts, nil
}

// guardedStorage is a resource's storage.Interface answering bad input
// with 4xx errors: an unparsable resourceVersion, a patch the libraries
// cannot apply, an object too large for etcd. (The generic apiserver
// answers these with 500s or a dropped connection.)
type guardedStorage struct {
	storage.Interface
	resource schema.GroupResource
}

func (s guardedStorage) checkResourceVersion(rv string) error {
	if _, err := s.Versioner().ParseResourceVersion(rv); err != nil {
		// The words of the list's 400, which upstream already answers.
		return apierrors.NewBadRequest(fmt.Sprintf("invalid resource version: %v", err))
	}
	return nil
}

func (s guardedStorage) Get(ctx context.Context, key string, opts storage.GetOptions, out runtime.Object) error {
	if err := s.checkResourceVersion(opts.ResourceVersion); err != nil {
		return err
	}
	return s.Interface.Get(ctx, key, opts, out)
}

func (s guardedStorage) Watch(ctx context.Context, key string, opts storage.ListOptions) (watch.Interface, error) {
	if err := s.checkResourceVersion(opts.ResourceVersion); err != nil {
		return nil, err
	}
	return s.Interface.Watch(ctx, key, opts)
}

func (s guardedStorage) Create(ctx context.Context, key string, obj, out runtime.Object, ttl uint64) error {
	return s.tooLarge(s.Interface.Create(ctx, key, obj, out, ttl))
}

func (s guardedStorage) GuaranteedUpdate(ctx context.Context, key string, dest runtime.Object, ignoreNotFound bool,
	preconditions *storage.Preconditions, tryUpdate storage.UpdateFunc, cached runtime.Object) error {
	if info, ok := genericapirequest.RequestInfoFrom(ctx); ok && info.Verb == "patch" {
		tryUpdate = patchErrorsAreBadRequests(tryUpdate)
	}
	return s.tooLarge(s.Interface.GuaranteedUpdate(ctx, key, dest, ignoreNotFound, preconditions, tryUpdate, cached))
}

// storeSignals are the texts of the errors the generic registry store's
// own update function returns to itself (unexported sentinels compared by
// identity): a patch that empties the finalizers of a deleted object must
// reach the store's "emptied finalizers" branch, which then deletes it.
var storeSignals = map[string]bool{"emptied finalizers": true, "abort delete": true, "delete now": true}

// patchErrorsAreBadRequests: during a patch, tryUpdate applies the patch
// to the stored object; an error there that is no API status (the
// strategic-merge and apply libraries return plain errors, the json-patch
// library panics) is the patch's fault.
func patchErrorsAreBadRequests(tryUpdate storage.UpdateFunc) storage.UpdateFunc {
	return func(input runtime.Object, res storage.ResponseMeta) (out runtime.Object, ttl *uint64, err error) {
		defer func() {
			if v := recover(); v != nil {
				err = apierrors.NewBadRequest(fmt.Sprintf("the patch cannot be applied: %v", v))
			}
		}()
		out, ttl, err = tryUpdate(input, res)
		var status apierrors.APIStatus
		if err != nil && !errors.As(err, &status) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) &&
			!storeSignals[err.Error()] {
			err = apierrors.NewBadRequest(fmt.Sprintf("the patch cannot be applied: %v", err))
		}
		return out, ttl, err
	}
}

// tooLarge makes a 413 of etcd refusing an object for its size (its
// request limit, 1.5 MiB by default, or the client's 2 MiB message limit).
func (s guardedStorage) tooLarge(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, rpctypes.ErrRequestTooLarge) || errors.Is(err, rpctypes.ErrGRPCRequestTooLarge) ||
		grpcstatus.Code(err) == codes.ResourceExhausted {
		return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("the %s object is larger than etcd stores (about 1.5 MiB): %v", s.resource, err))
	}
	return err
}
