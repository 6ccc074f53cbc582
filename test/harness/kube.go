package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// KubeOptions configure StartKube.
type KubeOptions struct {
	Tools    *KubeTools // nil calls EnsureKubernetes with zero options
	NodeName string     // default "pgk8s-node"
	Log      io.Writer
}

// Kube is a single-node Kubernetes on this machine, on a harness containerd: etcd, the API
// server, the controller manager, the scheduler and a kubelet, all on private paths under the
// containerd instance's directory and on loopback ports (the kubelet listens on the node IP,
// where the API server reaches it). Its pods' cgroups live under the containerd instance's
// cgroup parent, so the containerd Cleanup finds them.
type Kube struct {
	H          *Containerd
	Tools      *KubeTools
	Dir        string // <containerd dir>/k8s
	NodeName   string
	NodeIP     string
	Kubeconfig string // cluster-admin (system:masters), for kubectl and helm
	Server     string // https://127.0.0.1:<port>

	log     io.Writer
	procs   []*Process // started order: etcd, apiserver, controller-manager, scheduler, kubelet
	argv    map[string][]string
	sysctls map[string]string
	logsDir bool // /var/log/containers existed before the kubelet ran
	stopped bool
}

// The kernel settings the kubelet's container manager writes on start
// (pkg/kubelet/cm/container_manager_linux.go, setupKernelTunables) unless told to fail
// instead. They are host-wide: StartKube records them and puts them back once the kubelet has
// set them, and again in Stop.
var kubeletSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// hostContainerLogs is where the kubelet links every container's log, a path it does not let
// you change; Stop removes the links into this cluster and the directory if it made it.
const hostContainerLogs = "/var/log/containers"

// StartKube starts the cluster on h and waits until its node is Ready. Call Stop before h's
// Cleanup (StartKubeT does).
func StartKube(ctx context.Context, h *Containerd, o KubeOptions) (k *Kube, err error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Tools == nil {
		if o.Tools, err = EnsureKubernetes(ctx, KubeToolsOptions{Log: o.Log}); err != nil {
			return nil, err
		}
	}
	if o.NodeName == "" {
		o.NodeName = "pgk8s-node"
	}
	ip, err := nodeIP()
	if err != nil {
		return nil, err
	}
	k = &Kube{H: h, Tools: o.Tools, Dir: filepath.Join(h.Dir, "k8s"), NodeName: o.NodeName, NodeIP: ip,
		log: o.Log, sysctls: map[string]string{}, argv: map[string][]string{}, logsDir: exists(hostContainerLogs)}
	defer func() {
		if err != nil {
			err = errors.Join(err, k.Stop(context.WithoutCancel(ctx)))
		}
	}()
	for _, s := range kubeletSysctls {
		if v, err := os.ReadFile("/proc/sys/" + s); err == nil {
			k.sysctls[s] = strings.TrimSpace(string(v))
		}
	}
	for _, d := range []string{"etcd", "pki", "apiserver", "controller-manager", "scheduler", "kubelet", "pod-logs", "volume-plugins"} {
		if err := os.MkdirAll(filepath.Join(k.Dir, d), 0o700); err != nil {
			return k, err
		}
	}
	// The kubelet's directory holds pod volumes the pods' (non-root) processes read.
	if err := os.Chmod(k.Dir, 0o711); err != nil {
		return k, err
	}
	if err := os.Chmod(filepath.Join(k.Dir, "kubelet"), 0o711); err != nil {
		return k, err
	}
	ports, err := freePorts(5)
	if err != nil {
		return k, err
	}
	etcdClient, etcdPeer, apiPort, kubeletPort := ports[0], ports[1], ports[2], ports[3]
	k.Server = fmt.Sprintf("https://127.0.0.1:%d", apiPort)

	pki, err := newKubePKI(filepath.Join(k.Dir, "pki"))
	if err != nil {
		return k, err
	}
	apiCrt, apiKey, err := pki.issue("apiserver", "kube-apiserver", nil,
		[]string{"127.0.0.1", ip, "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"})
	if err != nil {
		return k, err
	}
	saKey, saPub, err := pki.serviceAccountKeys()
	if err != nil {
		return k, err
	}
	kubeletClientCrt, kubeletClientKey, err := pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil)
	if err != nil {
		return k, err
	}
	kubeconfigs := map[string][2]string{ // file: CN, group
		"admin":              {"kubernetes-admin", "system:masters"},
		"controller-manager": {"system:kube-controller-manager", ""},
		"scheduler":          {"system:kube-scheduler", ""},
		"kubelet":            {"system:node:" + k.NodeName, "system:nodes"},
	}
	for name, id := range kubeconfigs {
		var orgs []string
		if id[1] != "" {
			orgs = []string{id[1]}
		}
		crt, key, err := pki.issue(name, id[0], orgs, nil)
		if err != nil {
			return k, err
		}
		if err := pki.kubeconfig(filepath.Join(k.Dir, name+".kubeconfig"), k.Server, name, crt, key); err != nil {
			return k, err
		}
	}
	k.Kubeconfig = filepath.Join(k.Dir, "admin.kubeconfig")
	kc := func(name string) string { return filepath.Join(k.Dir, name+".kubeconfig") }

	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	if err := k.start(ctx, "etcd", o.Tools.Etcd,
		"--name=k8se2e", "--data-dir="+filepath.Join(k.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=k8se2e="+peerURL, "--listen-metrics-urls=",
		"--unsafe-no-fsync", "--log-level=warn"); err != nil {
		return k, err
	}
	if err := k.start(ctx, "kube-apiserver", o.Tools.APIServer,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", apiPort), "--advertise-address="+ip,
		// No kube-proxy runs, so nothing would route to the kubernetes Service's endpoints.
		"--endpoint-reconciler-type=none",
		"--service-cluster-ip-range=10.96.0.0/24",
		"--cert-dir="+filepath.Join(k.Dir, "apiserver"),
		"--tls-cert-file="+apiCrt, "--tls-private-key-file="+apiKey, "--client-ca-file="+pki.CACert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+saPub, "--service-account-signing-key-file="+saKey,
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		// The test's privileged pod must reach the node, where patchgate judges it.
		"--allow-privileged=true",
		"--kubelet-client-certificate="+kubeletClientCrt, "--kubelet-client-key="+kubeletClientKey,
		"--kubelet-preferred-address-types=InternalIP",
		"--profiling=false"); err != nil {
		return k, err
	}
	if err := k.waitFor(ctx, "the API server", 2*time.Minute, func() error {
		return k.Kubectl(ctx, "get", "--raw", "/readyz").Err()
	}); err != nil {
		return k, err
	}
	if err := k.start(ctx, "kube-controller-manager", o.Tools.ControllerManager,
		"--kubeconfig="+kc("controller-manager"),
		"--authentication-kubeconfig="+kc("controller-manager"), "--authorization-kubeconfig="+kc("controller-manager"),
		"--secure-port=0", "--cert-dir="+filepath.Join(k.Dir, "controller-manager"),
		"--leader-elect=false", "--use-service-account-credentials=true",
		"--service-account-private-key-file="+saKey, "--root-ca-file="+pki.CACert,
		"--profiling=false"); err != nil {
		return k, err
	}
	if err := k.start(ctx, "kube-scheduler", o.Tools.Scheduler,
		"--kubeconfig="+kc("scheduler"),
		"--authentication-kubeconfig="+kc("scheduler"), "--authorization-kubeconfig="+kc("scheduler"),
		"--secure-port=0", "--leader-elect=false", "--profiling=false"); err != nil {
		return k, err
	}
	cfg := filepath.Join(k.Dir, "kubelet.yaml")
	if err := os.WriteFile(cfg, []byte(k.kubeletConfig(pki.CACert, kubeletPort)), 0o600); err != nil {
		return k, err
	}
	if err := k.createCgroupRoot(); err != nil {
		return k, err
	}
	if err := k.start(ctx, "kubelet", o.Tools.Kubelet,
		"--config="+cfg, "--kubeconfig="+kc("kubelet"),
		"--root-dir="+filepath.Join(k.Dir, "kubelet"), "--cert-dir="+filepath.Join(k.Dir, "kubelet", "pki"),
		"--hostname-override="+k.NodeName, "--node-ip="+ip, "--v=1"); err != nil {
		return k, err
	}
	if err := k.waitFor(ctx, "node "+k.NodeName+" Ready", 3*time.Minute, func() error {
		r := k.Kubectl(ctx, "get", "node", k.NodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err := r.Err(); err != nil {
			return err
		}
		if s := strings.TrimSpace(r.Stdout); s != "True" {
			return fmt.Errorf("Ready=%q", s)
		}
		return nil
	}); err != nil {
		return k, err
	}
	// The kubelet has set its kernel settings by now; the rest of this machine keeps its own.
	if err := k.restoreSysctls(); err != nil {
		return k, err
	}
	// Pods need their namespace's default service account, which the controller manager
	// creates shortly after it starts.
	if err := k.waitFor(ctx, "the default service account", time.Minute, func() error {
		return k.Kubectl(ctx, "get", "serviceaccount", "default", "-n", "default").Err()
	}); err != nil {
		return k, err
	}
	return k, nil
}

// kubeletConfig is the KubeletConfiguration of the node: the harness containerd, cgroupfs
// as its runc runs, everything below the private directory, pods' cgroups under the
// containerd instance's cgroup parent, no eviction or image GC on this shared disk, client
// certificates from the test CA and no anonymous access.
func (k *Kube) kubeletConfig(ca string, port int) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: %[2]d
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %[3]q}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://%[4]s
cgroupDriver: cgroupfs
cgroupRoot: %[5]q
cgroupsPerQOS: true
# Kubernetes 1.35 refuses cgroup v1 unless told otherwise; these machines are cgroup v1.
failCgroupV1: false
failSwapOn: false
podLogsDir: %[6]q
volumePluginDir: %[7]q
staticPodPath: ""
resolvConf: ""
clusterDomain: cluster.local
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
fileCheckFrequency: 10s
serializeImagePulls: false
`, k.NodeIP, port, ca, k.H.Address, k.H.CgroupParent, filepath.Join(k.Dir, "pod-logs"), filepath.Join(k.Dir, "volume-plugins"))
}

// createCgroupRoot makes the kubelet's cgroup root, the containerd instance's cgroup parent,
// in every hierarchy (name=systemd too): the kubelet refuses a root that does not exist.
func (k *Kube) createCgroupRoot() error {
	for _, mp := range cgroupMounts() {
		if err := os.MkdirAll(filepath.Join(mp, k.H.CgroupParent), 0o755); err != nil {
			return err
		}
	}
	return nil
}

func (k *Kube) start(ctx context.Context, name, bin string, args ...string) error {
	argv := append([]string{bin}, args...)
	p, err := k.H.StartProcess(name, argv)
	if err != nil {
		return err
	}
	k.argv[name] = argv
	replaced := false
	for i, old := range k.procs {
		if old.Name == name {
			k.procs[i], replaced = p, true
		}
	}
	if !replaced {
		k.procs = append(k.procs, p)
	}
	// A process that exits at once has a bad flag or config: say so now, not as a timeout.
	select {
	case <-p.Exited():
		return fmt.Errorf("harness: %s exited at start (%v):\n%s", name, p.ExitErr(), lastLines(p.Log(), 20))
	case <-time.After(300 * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Process returns the cluster process called name ("kubelet", "kube-apiserver", ...).
func (k *Kube) Process(name string) *Process {
	for _, p := range k.procs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// StopComponent stops one cluster process ("kube-controller-manager", ...) with SIGTERM;
// StartComponent starts it again with the same flags. A test uses them to hold the cluster
// still, e.g. no DaemonSet controller while a node has no patchgate pod.
func (k *Kube) StopComponent(name string) error {
	p := k.Process(name)
	if p == nil {
		return fmt.Errorf("harness: no cluster process %q", name)
	}
	return stopComponent(p)
}

// StartComponent starts a process StopComponent stopped.
func (k *Kube) StartComponent(ctx context.Context, name string) error {
	argv, ok := k.argv[name]
	if !ok {
		return fmt.Errorf("harness: no cluster process %q", name)
	}
	if p := k.Process(name); p != nil && p.Running() {
		return fmt.Errorf("harness: %s is running", name)
	}
	return k.start(ctx, name, argv[0], argv[1:]...)
}

func (k *Kube) waitFor(ctx context.Context, what string, timeout time.Duration, ok func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = ok(); last == nil {
			return nil
		}
		for _, p := range k.procs {
			if !p.Running() {
				return fmt.Errorf("harness: waiting for %s: %s exited (%v):\n%s", what, p.Name, p.ExitErr(), lastLines(p.Log(), 20))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("harness: %s not there after %s: %v", what, timeout, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Kubectl runs the kubectl built with the cluster, as its admin.
func (k *Kube) Kubectl(ctx context.Context, args ...string) Result {
	return k.H.run(ctx, k.Tools.Kubectl, append([]string{"--kubeconfig", k.Kubeconfig}, args...)...)
}

// Stop ends the cluster: the kubelet first (its pods stay with containerd, whose Cleanup
// removes them), then the control plane; the kernel settings the kubelet changed are put
// back and its links in /var/log/containers removed. Safe to call more than once.
func (k *Kube) Stop(ctx context.Context) error {
	if k.stopped {
		return nil
	}
	k.stopped = true
	var errs []error
	for i := len(k.procs) - 1; i >= 0; i-- {
		if err := stopComponent(k.procs[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := k.restoreSysctls(); err != nil {
		errs = append(errs, err)
	}
	if err := k.removeContainerLogLinks(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// stopComponent ends a cluster process with SIGTERM. Its exit status is not an error (a
// component of this cluster exited 1 on SIGTERM); only one that had to be killed is.
func stopComponent(p *Process) error {
	if !p.Running() {
		return nil
	}
	err := p.Stop(15 * time.Second)
	if err != nil && !p.Running() && p.ExitErr() != nil && !strings.Contains(err.Error(), "killed") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("harness: stopping %s: %w", p.Name, err)
	}
	return nil
}

func (k *Kube) restoreSysctls() error {
	var errs []error
	for s, v := range k.sysctls {
		cur, err := os.ReadFile("/proc/sys/" + s)
		if err == nil && strings.TrimSpace(string(cur)) == v {
			continue
		}
		if err := os.WriteFile("/proc/sys/"+s, []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("harness: restoring %s=%s: %w", s, v, err))
		}
	}
	return errors.Join(errs...)
}

func (k *Kube) removeContainerLogLinks() error {
	entries, err := os.ReadDir(hostContainerLogs)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(hostContainerLogs, e.Name())
		if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, k.Dir+"/") {
			if err := os.Remove(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if !k.logsDir {
		_ = os.Remove(hostContainerLogs) // only when empty
	}
	return errors.Join(errs...)
}

// Leftovers lists what the cluster left on the host outside the containerd instance's
// directory (which the containerd Leftovers covers).
func (k *Kube) Leftovers() []string {
	var out []string
	if !k.logsDir && exists(hostContainerLogs) {
		out = append(out, hostContainerLogs)
	}
	for s, v := range k.sysctls {
		if cur, err := os.ReadFile("/proc/sys/" + s); err == nil && strings.TrimSpace(string(cur)) != v {
			out = append(out, fmt.Sprintf("sysctl %s=%s (was %s)", s, strings.TrimSpace(string(cur)), v))
		}
	}
	return out
}

// nodeIP is the address of the interface the default route leaves by: the kubelet refuses a
// loopback node IP, and the API server reaches the kubelet there.
func nodeIP() (string, error) {
	data, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 || f[1] != "00000000" {
			continue
		}
		iface, err := net.InterfaceByName(f[0])
		if err != nil {
			return "", err
		}
		addrs, err := iface.Addrs()
		if err != nil {
			return "", err
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				return n.IP.String(), nil
			}
		}
	}
	return "", fmt.Errorf("harness: no IPv4 default route for the kubelet's node IP: %w", ErrMissingPrerequisite)
}

// freePorts returns n loopback TCP ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		_, p, _ := net.SplitHostPort(l.Addr().String())
		port, _ := strconv.Atoi(p)
		ports = append(ports, port)
	}
	return ports, nil
}
