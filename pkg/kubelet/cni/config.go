// Package cni writes the node's pod network configuration: one CNI
// conflist (bridge + host-local + portmap) that containerd's CRI plugin
// picks up from its conf_dir. Until the file exists, containerd reports
// NetworkReady=false, which keeps the node NotReady until it has a
// podCIDR.
package cni

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

const (
	// ConfigFileName is the conflist WriteConfig writes in the conf dir.
	ConfigFileName = "10-skiff.conflist"
	// DefaultBridgeName is the Linux bridge the pods' veths join.
	DefaultBridgeName = "cni0"
	// DefaultNetworkName names the network in the conflist; host-local keeps
	// its leases under <DataDir>/<network name>.
	DefaultNetworkName = "skiff"
	// Version is the conflist's cniVersion; containernetworking-plugins
	// 1.1.1 and containerd 1.6's libcni both support it.
	Version = "1.0.0"
)

// Config is the pod network of this node.
type Config struct {
	// PodCIDRs are the node's spec.podCIDRs: one host-local range each.
	PodCIDRs []netip.Prefix
	// BridgeName defaults to DefaultBridgeName.
	BridgeName string
	// DataDir is where host-local records the IPs it gave out.
	DataDir string
	// MTU of the bridge and the pods' interfaces; 0 lets the plugin choose.
	MTU int
	// NetworkName defaults to DefaultNetworkName.
	NetworkName string
	// SkipMasquerade turns the bridge plugin's ipMasq off, for when the
	// pod network (pkg/podnetwork) masquerades only traffic leaving the
	// cluster CIDR itself. ipMasq masquerades everything not in this
	// node's podCIDR, which hides pod source IPs on traffic to other
	// nodes' pods (and so breaks NetworkPolicy by source). The zero value
	// keeps ipMasq on: a node without the pod network still needs its pods'
	// traffic to the outside masqueraded.
	SkipMasquerade bool
}

func (c Config) bridgeName() string {
	if c.BridgeName == "" {
		return DefaultBridgeName
	}
	return c.BridgeName
}

func (c Config) networkName() string {
	if c.NetworkName == "" {
		return DefaultNetworkName
	}
	return c.NetworkName
}

type conflist struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Plugins    []any  `json:"plugins"`
}

type bridgePlugin struct {
	Type        string `json:"type"`
	Bridge      string `json:"bridge"`
	IsGateway   bool   `json:"isGateway"`
	IPMasq      bool   `json:"ipMasq"`
	HairpinMode bool   `json:"hairpinMode"`
	MTU         int    `json:"mtu,omitempty"`
	IPAM        ipam   `json:"ipam"`
}

type ipam struct {
	Type    string      `json:"type"`
	DataDir string      `json:"dataDir"`
	Ranges  [][]ipRange `json:"ranges"`
	Routes  []route     `json:"routes"`
}

type ipRange struct {
	Subnet string `json:"subnet"`
}

type route struct {
	Dst string `json:"dst"`
}

type portmapPlugin struct {
	Type         string          `json:"type"`
	SNAT         bool            `json:"snat"`
	Capabilities map[string]bool `json:"capabilities"`
}

// Render returns the conflist for cfg.
func Render(cfg Config) ([]byte, error) {
	if len(cfg.PodCIDRs) == 0 {
		return nil, errors.New("no pod CIDRs")
	}
	if !filepath.IsAbs(cfg.DataDir) {
		return nil, fmt.Errorf("host-local data dir %q is not an absolute path", cfg.DataDir)
	}
	if err := validInterfaceName(cfg.bridgeName()); err != nil {
		return nil, fmt.Errorf("bridge name: %w", err)
	}
	if cfg.MTU < 0 {
		return nil, fmt.Errorf("MTU %d is negative", cfg.MTU)
	}
	am := ipam{Type: "host-local", DataDir: cfg.DataDir}
	var v4, v6 bool
	for _, p := range cfg.PodCIDRs {
		if !p.IsValid() {
			return nil, errors.New("invalid pod CIDR")
		}
		p = p.Masked()
		if p.Addr().Is4() {
			if v4 {
				return nil, fmt.Errorf("more than one IPv4 pod CIDR (%s)", p)
			}
			v4 = true
		} else {
			if v6 {
				return nil, fmt.Errorf("more than one IPv6 pod CIDR (%s)", p)
			}
			v6 = true
		}
		am.Ranges = append(am.Ranges, []ipRange{{Subnet: p.String()}})
	}
	if v4 {
		am.Routes = append(am.Routes, route{Dst: "0.0.0.0/0"})
	}
	if v6 {
		am.Routes = append(am.Routes, route{Dst: "::/0"})
	}
	list := conflist{
		CNIVersion: Version,
		Name:       cfg.networkName(),
		Plugins: []any{
			bridgePlugin{
				Type:        "bridge",
				Bridge:      cfg.bridgeName(),
				IsGateway:   true,
				IPMasq:      !cfg.SkipMasquerade,
				HairpinMode: true,
				MTU:         cfg.MTU,
				IPAM:        am,
			},
			portmapPlugin{Type: "portmap", SNAT: true, Capabilities: map[string]bool{"portMappings": true}},
		},
	}
	out, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// WriteConfig writes the conflist for cfg into confDir, atomically and only
// when its content changes (containerd watches the dir and reloads on every
// write).
func WriteConfig(confDir string, cfg Config) error {
	data, err := Render(cfg)
	if err != nil {
		return fmt.Errorf("CNI config: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("CNI config: %w", err)
	}
	if _, err := WriteFileIfChanged(filepath.Join(confDir, ConfigFileName), data, 0o644); err != nil {
		return fmt.Errorf("CNI config: %w", err)
	}
	return nil
}

// WriteFileIfChanged replaces path with data through a rename unless it
// already holds exactly data; it reports whether it wrote.
func WriteFileIfChanged(path string, data []byte, perm os.FileMode) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	// The temporary name must not end in .conflist/.conf/.json, or
	// containerd could load the half-written file.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return false, err
	}
	return true, nil
}

// validInterfaceName mirrors the kernel's dev_valid_name.
func validInterfaceName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%q is not a valid interface name", name)
	case len(name) > 15:
		return fmt.Errorf("%q is longer than 15 characters", name)
	case strings.ContainsAny(name, "/: \t\n"):
		return fmt.Errorf("%q contains '/', ':' or whitespace", name)
	}
	return nil
}

// FindBinDir returns the directory holding the CNI plugins this conflist
// uses: /usr/lib/cni on Debian, /opt/cni/bin elsewhere.
func FindBinDir() (string, error) {
	for _, dir := range []string{"/usr/lib/cni", "/opt/cni/bin"} {
		if isExecutable(filepath.Join(dir, "bridge")) &&
			isExecutable(filepath.Join(dir, "host-local")) &&
			isExecutable(filepath.Join(dir, "portmap")) {
			return dir, nil
		}
	}
	return "", errors.New("no CNI plugins (bridge, host-local, portmap) in /usr/lib/cni or /opt/cni/bin; on Debian: apt-get install containernetworking-plugins")
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
