package plugin

import (
	"maps"
	"slices"

	"github.com/containerd/nri/pkg/api"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ApplyAdjustment returns the container as it will run: a copy of the
// pristine container with every plugin's collected adjustment applied, the
// way containerd's spec generator applies them
// (github.com/containerd/nri pkg/runtime-tools/generate, Generator.Adjust).
// Only the fields patchgate judges are applied: annotations, mounts, devices,
// device cgroup rules, namespaces, sysctls, the seccomp filter, hooks and CDI
// devices. The pristine container is not modified, and the result shares
// nothing with it.
func ApplyAdjustment(ctr *api.Container, adj *api.ContainerAdjustment) *api.Container {
	if ctr == nil {
		return nil
	}
	return proto.Clone(adjusted(ctr, adj)).(*api.Container)
}

// adjusted is ApplyAdjustment for reading only, as the validator does on
// every request: the result shares with ctr (and adj) every part an
// adjustment does not touch (the seccomp filter, env, args, rlimits, ...),
// and copies on write what it changes (the annotation and sysctl maps, the
// mount, device, namespace and hook lists, the Linux part and its
// resources). ctr is not modified; the result must not be either. A deep
// proto.Clone of the whole container was the largest allocation on the
// validator's request path (docs/benchmarks.md, section 1).
func adjusted(ctr *api.Container, adj *api.ContainerAdjustment) *api.Container {
	if ctr == nil {
		return nil
	}
	out := shallowCopy(ctr)
	if adj == nil {
		return out
	}

	if len(adj.GetAnnotations()) > 0 {
		out.Annotations = maps.Clone(out.Annotations)
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

	if len(adj.GetMounts()) > 0 {
		out.Mounts = slices.Clone(out.Mounts)
	}
	for _, m := range adj.GetMounts() {
		dst, rm := m.IsMarkedForRemoval()
		out.Mounts = removeMount(out.Mounts, dst)
		if !rm {
			out.Mounts = append(out.Mounts, m)
		}
	}

	if h := adj.GetHooks(); h != nil {
		hooks := &api.Hooks{}
		if out.Hooks != nil {
			hooks = shallowCopy(out.Hooks)
			// Append must not write into the pristine lists' spare capacity.
			hooks.Prestart = slices.Clip(hooks.Prestart) //nolint:staticcheck // SA1019: applied as the runtime does
			hooks.CreateRuntime = slices.Clip(hooks.CreateRuntime)
			hooks.CreateContainer = slices.Clip(hooks.CreateContainer)
			hooks.StartContainer = slices.Clip(hooks.StartContainer)
			hooks.Poststart = slices.Clip(hooks.Poststart)
			hooks.Poststop = slices.Clip(hooks.Poststop)
		}
		out.Hooks = hooks.Append(h)
	}

	if len(adj.GetCDIDevices()) > 0 {
		out.CDIDevices = append(slices.Clip(out.CDIDevices), adj.GetCDIDevices()...)
	}

	la := adj.GetLinux()
	if la == nil {
		return out
	}
	if out.Linux == nil {
		out.Linux = &api.LinuxContainer{}
	} else {
		out.Linux = shallowCopy(out.Linux)
	}
	lin := out.Linux
	if len(la.GetDevices()) > 0 {
		lin.Devices = slices.Clone(lin.Devices)
	}
	for _, d := range la.GetDevices() {
		path, rm := d.IsMarkedForRemoval()
		lin.Devices = removeDevice(lin.Devices, path)
		if !rm {
			lin.Devices = append(lin.Devices, d)
		}
	}
	if rules := la.GetResources().GetDevices(); len(rules) > 0 {
		if lin.Resources == nil {
			lin.Resources = &api.LinuxResources{}
		} else {
			lin.Resources = shallowCopy(lin.Resources)
		}
		lin.Resources.Devices = append(slices.Clip(lin.Resources.Devices), rules...)
	}
	if sp := la.GetSeccompPolicy(); sp != nil {
		lin.SeccompPolicy = sp
	}
	if len(la.GetNamespaces()) > 0 {
		lin.Namespaces = slices.Clone(lin.Namespaces)
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
	if len(la.GetSysctl()) > 0 {
		lin.Sysctl = maps.Clone(lin.Sysctl)
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

// shallowCopy is a new message of m's type whose fields are m's: lists,
// maps and messages are shared, not copied. Every field the message type
// has is set (protoreflect), so a field added by a newer NRI is not lost.
func shallowCopy[M proto.Message](m M) M {
	src := m.ProtoReflect()
	dst := src.Type().New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		dst.Set(fd, v)
		return true
	})
	if u := src.GetUnknown(); len(u) > 0 {
		dst.SetUnknown(u)
	}
	return dst.Interface().(M)
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
