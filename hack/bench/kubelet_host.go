package main

// What the kubelet scenarios change on the machine, and how they undo it.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"

	"github.com/skiff-dev/skiff/pkg/images"
	"github.com/skiff-dev/skiff/pkg/kubelet/cni"
)

func parsePrefix(s string) (netip.Prefix, error) { return netip.ParsePrefix(s) }

func importImage(ctx context.Context, address, file string) error {
	return images.Import(ctx, address, file)
}

// kernelTunables are the sysctls upstream kubelet sets at start
// (pkg/kubelet/cm setupKernelTunables): restored after the run.
var kernelTunables = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// skiffCNIConf is where `skiff kubelet` writes its conflist when its runtime
// is not its own containerd (it has no flag for another dir).
var skiffCNIConf = filepath.Join("/etc/cni/net.d", cni.ConfigFileName)

// hostState is what the run may change, as it was before.
type hostState struct {
	sysctls map[string]string
	// conf is skiffCNIConf's content, nil if it did not exist.
	conf []byte
	// missingDirs are the dirs of skiffCNIConf and /var/log/containers
	// (upstream's log links) that did not exist, deepest first: removed
	// again when empty.
	missingDirs []string
	// natChains are the nat table's chains.
	natChains map[string]bool
}

func snapshotHost() (*hostState, error) {
	h := &hostState{sysctls: map[string]string{}}
	for _, name := range kernelTunables {
		data, err := os.ReadFile("/proc/sys/" + name)
		if err != nil {
			return nil, fmt.Errorf("reading sysctl %s: %w", name, err)
		}
		h.sysctls[name] = strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile(skiffCNIConf); err == nil {
		h.conf = data
	}
	for dir := filepath.Dir(skiffCNIConf); dir != "/"; dir = filepath.Dir(dir) {
		if _, err := os.Stat(dir); err != nil {
			h.missingDirs = append(h.missingDirs, dir)
		}
	}
	if _, err := os.Stat("/var/log/containers"); err != nil {
		h.missingDirs = append(h.missingDirs, "/var/log/containers")
	}
	save, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		return nil, fmt.Errorf("iptables-save: %w", err)
	}
	h.natChains, _ = parseNATChains(save)
	return h, nil
}

// parseNATChains returns the chains of an iptables-save of the nat table
// and the chains some rule is in or jumps to.
func parseNATChains(save []byte) (chains, used map[string]bool) {
	chains, used = map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(save))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) > 0 && strings.HasPrefix(f[0], ":"):
			chains[strings.TrimPrefix(f[0], ":")] = true
		case len(f) > 1 && f[0] == "-A":
			used[f[1]] = true
			for i := 2; i+1 < len(f); i++ {
				if f[i] == "-j" || f[i] == "-g" {
					used[f[i+1]] = true
				}
			}
		}
	}
	return chains, used
}

// removeStrayCNIChains deletes the per-container CNI-<hash> nat chains
// made since the snapshot that are empty and unreferenced: the bridge
// plugin's teardown sometimes leaves the chain when many pods go at once
// (iptables-nft), with nothing naming its network any more.
func (h *hostState) removeStrayCNIChains() error {
	stray := func() (map[string]bool, error) {
		save, err := exec.Command("iptables-save", "-t", "nat").Output()
		if err != nil {
			return nil, fmt.Errorf("iptables-save: %w", err)
		}
		chains, used := parseNATChains(save)
		out := map[string]bool{}
		for c := range chains {
			if !h.natChains[c] && !used[c] && strings.HasPrefix(c, "CNI-") && !strings.HasPrefix(c, "CNI-HOSTPORT-") && !strings.HasPrefix(c, "CNI-DN-") {
				out[c] = true
			}
		}
		return out, nil
	}
	// A chain another node's plugin has just created is empty for a moment
	// too: only chains empty on two looks, seconds apart, go.
	first, err := stray()
	if err != nil || len(first) == 0 {
		return err
	}
	time.Sleep(2 * time.Second)
	second, err := stray()
	if err != nil {
		return err
	}
	var script strings.Builder
	n := 0
	for c := range second {
		if first[c] {
			fmt.Fprintf(&script, "-X %s\n", c)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	cmd := exec.Command("iptables-restore", "--noflush", "-w")
	cmd.Stdin = strings.NewReader("*nat\n" + script.String() + "COMMIT\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore: %v: %s", err, bytes.TrimSpace(out))
	}
	logf("removed %d empty CNI nat chains the plugins left", n)
	return nil
}

// restore puts back what changed, noting what it had to restore.
func (h *hostState) restore(res *results) {
	for _, name := range kernelTunables {
		data, err := os.ReadFile("/proc/sys/" + name)
		if err != nil || strings.TrimSpace(string(data)) == h.sysctls[name] {
			continue
		}
		if err := os.WriteFile("/proc/sys/"+name, []byte(h.sysctls[name]+"\n"), 0o644); err != nil {
			res.note("clean-up: restoring sysctl %s to %s: %v", name, h.sysctls[name], err)
		} else {
			logf("restored sysctl %s: %s → %s", name, strings.TrimSpace(string(data)), h.sysctls[name])
		}
	}
	current, err := os.ReadFile(skiffCNIConf)
	switch {
	case h.conf == nil && err == nil:
		if err := os.Remove(skiffCNIConf); err != nil {
			res.note("clean-up: %v", err)
		}
	case h.conf != nil && !bytes.Equal(current, h.conf):
		if err := os.WriteFile(skiffCNIConf, h.conf, 0o644); err != nil {
			res.note("clean-up: restoring %s: %v", skiffCNIConf, err)
		}
	}
	for _, dir := range h.missingDirs {
		_ = os.Remove(dir) // only when empty
	}
}

// cgroupMounts are the mount points of the cgroup hierarchies (v1 and v2).
func cgroupMounts() ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - fstype source super
		f := strings.Fields(sc.Text())
		sep := slices.Index(f, "-")
		if sep < 0 || sep+1 >= len(f) || len(f) < 5 {
			continue
		}
		if t := f[sep+1]; t == "cgroup" || t == "cgroup2" {
			out = append(out, unescapeMount(f[4]))
		}
	}
	return out, nil
}

// ensureCgroupRoot creates root in every cgroup hierarchy: upstream kubelet
// refuses a cgroupRoot that does not exist.
func ensureCgroupRoot(root string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		dir := filepath.Join(m, root)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("cgroup root: %w", err)
		}
		// A fresh v1 cpuset takes no tasks until it has CPUs and memory nodes.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if cur, err := os.ReadFile(filepath.Join(dir, f)); err != nil || strings.TrimSpace(string(cur)) != "" {
				continue
			}
			parent, err := os.ReadFile(filepath.Join(m, f))
			if err != nil {
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, f), parent, 0o644); err != nil {
				return fmt.Errorf("cgroup root %s: %w", f, err)
			}
		}
	}
	return nil
}

// removeCgroupRoot removes root and the cgroups below it in every
// hierarchy, deepest first (a cgroup goes only once empty of tasks).
func removeCgroupRoot(root string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		top := filepath.Join(m, root)
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.Reverse(dirs)
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// removeAllPods stops and removes every sandbox (with its containers) of
// the containerd at endpoint; it returns how many there were.
func removeAllPods(ctx context.Context, endpoint string) (int, error) {
	svc, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint(endpoint).
		WithConnectionTimeout(10 * time.Second).WithTracerProvider(nil).Build(ctx)
	if err != nil {
		return 0, fmt.Errorf("CRI: %w", err)
	}
	defer svc.Close(ctx)
	sandboxes, err := svc.ListPodSandbox(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("CRI: list sandboxes: %w", err)
	}
	var errs []error
	for _, s := range sandboxes {
		if err := svc.StopPodSandbox(ctx, s.Id); err != nil {
			errs = append(errs, fmt.Errorf("CRI: stop sandbox %s: %w", s.Id, err))
			continue
		}
		if err := svc.RemovePodSandbox(ctx, s.Id); err != nil {
			errs = append(errs, fmt.Errorf("CRI: remove sandbox %s: %w", s.Id, err))
		}
	}
	// Containers whose sandbox is gone (none, normally).
	containers, err := svc.ListContainers(ctx, nil)
	if err != nil {
		errs = append(errs, fmt.Errorf("CRI: list containers: %w", err))
	}
	for _, c := range containers {
		_ = svc.StopContainer(ctx, c.Id, 0)
		if err := svc.RemoveContainer(ctx, c.Id); err != nil {
			errs = append(errs, fmt.Errorf("CRI: remove container %s: %w", c.Id, err))
		}
	}
	return len(sandboxes), errors.Join(errs...)
}

// readySandboxes counts the sandboxes in state ready.
func readySandboxes(ctx context.Context, endpoint string) (int, error) {
	svc, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint(endpoint).
		WithConnectionTimeout(10 * time.Second).WithTracerProvider(nil).Build(ctx)
	if err != nil {
		return 0, fmt.Errorf("CRI: %w", err)
	}
	defer svc.Close(ctx)
	list, err := svc.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}})
	return len(list), err
}

// mountsUnder counts the mounts below dir.
func mountsUnder(dir string) (int, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return 0, err
	}
	prefix := filepath.Clean(dir) + "/"
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 5 && strings.HasPrefix(unescapeMount(f[4]), prefix) {
			n++
		}
	}
	return n, nil
}

// unmountUnder detaches every mount below dir (a kubelet stopped with its
// pods' volumes still mounted), deepest first.
func unmountUnder(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	prefix := filepath.Clean(dir) + "/"
	var points []string
	kinds := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		if mp := unescapeMount(f[4]); strings.HasPrefix(mp, prefix) || mp == filepath.Clean(dir) {
			points = append(points, mp)
			kinds[mountKind(strings.TrimPrefix(mp, prefix))]++
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, mp := range points {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	if len(points) > 0 {
		logf("unmounted %d mounts left under %s: %v", len(points), dir, kinds)
	}
	return errors.Join(errs...)
}

// mountKind names a mount below a kubelet root dir without the pod's UID
// and the volume's name (pods/<uid>/volumes/<plugin>/<name> →
// pods/*/volumes/<plugin>).
func mountKind(rel string) string {
	parts := strings.Split(rel, "/")
	if len(parts) > 1 && parts[0] == "pods" {
		parts[1] = "*"
	}
	return strings.Join(parts[:min(len(parts), 4)], "/")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removePodLogs removes the log dirs (/var/log/pods/<ns>_<pod>_<uid>) and
// the /var/log/containers links of the pods of namespaces.
func removePodLogs(namespaces []string) error {
	var errs []error
	for _, ns := range namespaces {
		dirs, _ := filepath.Glob(filepath.Join("/var/log/pods", ns+"_*"))
		links, _ := filepath.Glob(filepath.Join("/var/log/containers", "*_"+ns+"_*"))
		for _, p := range append(dirs, links...) {
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
