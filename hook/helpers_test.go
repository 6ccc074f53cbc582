package hook

import "github.com/patchgate/patchgate/policy"

func podID(ns, name, uid string) policy.PodIdentity {
	return policy.PodIdentity{Namespace: ns, Name: name, UID: uid}
}

// withSandbox is p with the sandbox id containerd's CRI names (the rule
// hostPathMounts admits only that sandbox's runtime files).
func withSandbox(p policy.PodIdentity, id string) policy.PodIdentity {
	p.SandboxID = id
	return p
}

func ctrID(id, name, image string) policy.ContainerIdentity {
	return policy.ContainerIdentity{ID: id, Name: name, Image: image}
}
