package plugin

import (
	"github.com/containerd/nri/pkg/api"
	"google.golang.org/protobuf/proto"
)

// ApplyAdjustment returns the container as it will run: a copy of the
// pristine container with every plugin's collected adjustment applied, the
// way containerd's spec generator applies them
// (github.com/containerd/nri pkg/runtime-tools/generate, Generator.Adjust).
// Only the fields patchgate judges are applied: annotations, mounts, devices,
// device cgroup rules, namespaces, sysctls, the seccomp filter, hooks and CDI
// devices. The pristine container is not modified.
func ApplyAdjustment(ctr *api.Container, adj *api.ContainerAdjustment) *api.Container {
	if ctr == nil {
		return nil
	}
	out := proto.Clone(ctr).(*api.Container)
	if adj == nil {
		return out
	}

	if len(adj.GetAnnotations()) > 0 {
		if out.Annotations == nil {
			out.Annotations = map[string]string{}
		}
		for k, v := range adj.GetAnnotations() {
			if key, rm := api.IsMarkedForRemoval(k); rm {
				delete(out.Annotations, key)
				continue
			}
			out.Annotations[k] = v
		}
	}

	for _, m := range adj.GetMounts() {
		dst, rm := m.IsMarkedForRemoval()
		out.Mounts = removeMount(out.Mounts, dst)
		if !rm {
			out.Mounts = append(out.Mounts, proto.Clone(m).(*api.Mount))
		}
	}

	if h := adj.GetHooks(); h != nil {
		if out.Hooks == nil {
			out.Hooks = &api.Hooks{}
		}
		out.Hooks.Append(h)
	}

	out.CDIDevices = append(out.CDIDevices, adj.GetCDIDevices()...)

	la := adj.GetLinux()
	if la == nil {
		return out
	}
	if out.Linux == nil {
		out.Linux = &api.LinuxContainer{}
	}
	lin := out.Linux
	for _, d := range la.GetDevices() {
		path, rm := d.IsMarkedForRemoval()
		lin.Devices = removeDevice(lin.Devices, path)
		if !rm {
			lin.Devices = append(lin.Devices, proto.Clone(d).(*api.LinuxDevice))
		}
	}
	if rules := la.GetResources().GetDevices(); len(rules) > 0 {
		if lin.Resources == nil {
			lin.Resources = &api.LinuxResources{}
		}
		for _, r := range rules {
			lin.Resources.Devices = append(lin.Resources.Devices, proto.Clone(r).(*api.LinuxDeviceCgroup))
		}
	}
	if sp := la.GetSeccompPolicy(); sp != nil {
		lin.SeccompPolicy = proto.Clone(sp).(*api.LinuxSeccomp)
	}
	for _, n := range la.GetNamespaces() {
		if n == nil {
			continue
		}
		typ, rm := n.IsMarkedForRemoval()
		lin.Namespaces = removeNamespace(lin.Namespaces, typ)
		if !rm {
			lin.Namespaces = append(lin.Namespaces, &api.LinuxNamespace{Type: n.GetType(), Path: n.GetPath()})
		}
	}
	for k, v := range la.GetSysctl() {
		key, rm := api.IsMarkedForRemoval(k)
		if rm {
			delete(lin.Sysctl, key)
			continue
		}
		if lin.Sysctl == nil {
			lin.Sysctl = map[string]string{}
		}
		lin.Sysctl[k] = v
	}
	return out
}

func removeMount(ms []*api.Mount, dst string) []*api.Mount {
	out := ms[:0]
	for _, m := range ms {
		if m.GetDestination() != dst {
			out = append(out, m)
		}
	}
	return out
}

func removeDevice(ds []*api.LinuxDevice, path string) []*api.LinuxDevice {
	out := ds[:0]
	for _, d := range ds {
		if d.GetPath() != path {
			out = append(out, d)
		}
	}
	return out
}

func removeNamespace(ns []*api.LinuxNamespace, typ string) []*api.LinuxNamespace {
	out := ns[:0]
	for _, n := range ns {
		if n.GetType() != typ {
			out = append(out, n)
		}
	}
	return out
}
