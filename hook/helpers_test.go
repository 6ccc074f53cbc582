package hook

import "github.com/patchgate/patchgate/policy"

func podID(ns, name, uid string) policy.PodIdentity {
	return policy.PodIdentity{Namespace: ns, Name: name, UID: uid}
}

func ctrID(id, name, image string) policy.ContainerIdentity {
	return policy.ContainerIdentity{ID: id, Name: name, Image: image}
}
