package plugin

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/nri/pkg/api"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// everyAdjustment touches every part ApplyAdjustment applies.
func everyAdjustment() *api.ContainerAdjustment {
	adj := &api.ContainerAdjustment{}
	adj.AddAnnotation("other.example/x", "1")
	adj.RemoveAnnotation("io.kubernetes.cri.image-name")
	adj.AddMount(&api.Mount{Destination: "/host-etc", Source: "/etc", Type: "bind", Options: []string{"rbind", "rw"}})
	adj.RemoveMount("/etc/hosts")
	adj.AddDevice(&api.LinuxDevice{Path: "/dev/kmsg", Type: "c", Major: 1, Minor: 11})
	adj.RemoveDevice("/dev/null")
	adj.RemoveNamespace(&api.LinuxNamespace{Type: "network"})
	adj.AddOrReplaceNamespace(&api.LinuxNamespace{Type: "ipc", Path: "/proc/1/ns/ipc"})
	adj.AddHooks(&api.Hooks{CreateRuntime: []*api.Hook{{Path: "/x", Args: []string{"/x"}}}, Poststop: []*api.Hook{{Path: "/y"}}})
	adj.AddCDIDevice(&api.CDIDevice{Name: "vendor.com/gpu=0"})
	adj.SetLinuxSysctl("net.ipv4.ip_forward", "1")
	adj.SetLinuxSysctl(api.MarkForRemoval("kernel.shm_rmid_forced"), "")
	adj.SetLinuxSeccompPolicy(&api.LinuxSeccomp{DefaultAction: "SCMP_ACT_ALLOW"})
	if adj.Linux.Resources == nil {
		adj.Linux.Resources = &api.LinuxResources{}
	}
	adj.Linux.Resources.Devices = append(adj.Linux.Resources.Devices, &api.LinuxDeviceCgroup{Allow: true, Access: "rwm"})
	return adj
}

// TestAdjustedIsApplyAdjustment: the validator's shallow, copy-on-write
// adjusted container equals ApplyAdjustment's deep copy for every captured
// container, and leaves the pristine container as it was.
func TestAdjustedIsApplyAdjustment(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("testdata", "nri", "*"))
	if len(dirs) == 0 {
		t.Fatal("no captures")
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "nri-container.json")); err != nil {
			continue
		}
		_, ctr := loadCapture(t, filepath.Base(d))
		for name, adj := range map[string]*api.ContainerAdjustment{"nil": nil, "empty": {}, "every": everyAdjustment()} {
			before := proto.Clone(ctr)
			got := adjusted(ctr, adj)
			if want := ApplyAdjustment(ctr, adj); !proto.Equal(got, want) {
				t.Errorf("%s/%s: adjusted differs from ApplyAdjustment:\n%v\n%v", filepath.Base(d), name, got, want)
			}
			if !proto.Equal(ctr, before) {
				t.Errorf("%s/%s: adjusted modified the pristine container", filepath.Base(d), name)
			}
			// A second adjustment of the same pristine container sees
			// nothing of the first.
			if again := adjusted(ctr, adj); !proto.Equal(again, got) {
				t.Errorf("%s/%s: a second adjusted differs", filepath.Base(d), name)
			}
		}
	}
}

// TestShallowCopyEveryField: shallowCopy carries every field the message
// types have (set here through protoreflect), so a field added by a newer
// NRI is not silently dropped from what the validator judges.
func TestShallowCopyEveryField(t *testing.T) {
	for _, m := range []proto.Message{&api.Container{}, &api.LinuxContainer{}, &api.Hooks{}, &api.LinuxResources{}} {
		populate(m.ProtoReflect(), 2)
		if c := shallowCopy(m); !proto.Equal(c, m) {
			t.Errorf("%T: shallow copy differs:\n%v\n%v", m, c, m)
		}
	}
}

func populate(m protoreflect.Message, depth int) {
	fds := m.Descriptor().Fields()
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			k := protoreflect.ValueOfString("k").MapKey()
			if fd.MapKey().Kind() != protoreflect.StringKind {
				continue
			}
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				mp.Set(k, protoreflect.ValueOfMessage(mp.NewValue().Message()))
			} else if fd.MapValue().Kind() == protoreflect.StringKind {
				mp.Set(k, protoreflect.ValueOfString("v"))
			}
		case fd.IsList():
			l := m.Mutable(fd).List()
			if fd.Kind() == protoreflect.MessageKind {
				e := l.NewElement()
				if depth > 0 {
					populate(e.Message(), depth-1)
				}
				l.Append(e)
			} else if v, ok := scalar(fd); ok {
				l.Append(v)
			}
		case fd.Kind() == protoreflect.MessageKind:
			if depth > 0 {
				populate(m.Mutable(fd).Message(), depth-1)
			} else {
				m.Mutable(fd)
			}
		default:
			if v, ok := scalar(fd); ok {
				m.Set(fd, v)
			}
		}
	}
}

func scalar(fd protoreflect.FieldDescriptor) (protoreflect.Value, bool) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString("s"), true
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true), true
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(3), true
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(3), true
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(3), true
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(3), true
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(1), true
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{1}), true
	}
	return protoreflect.Value{}, false
}
