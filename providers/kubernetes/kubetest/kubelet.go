package kubetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	drapb "k8s.io/kubelet/pkg/apis/dra/v1"
)

// AddNode registers a node that is Ready, with room for pods: what a
// kubelet does when it starts.
func AddNode(ctx context.Context, c kubernetes.Interface, name string) error {
	n, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: name, Labels: map[string]string{"kubernetes.io/hostname": name},
	}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	room := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("110"),
	}
	n.Status = corev1.NodeStatus{
		Capacity: room, Allocatable: room, Phase: corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
	}
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node %s status: %w", name, err)
	}
	return nil
}

// SetBudgetStatus sets a PodDisruptionBudget's status as the disruption
// controller would: observed, with this many disruptions allowed.
func SetBudgetStatus(ctx context.Context, c kubernetes.Interface, ns, name string, allowed, healthy, desired int32) error {
	pdb, err := c.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	pdb.Status = policyv1.PodDisruptionBudgetStatus{
		ObservedGeneration: pdb.Generation, DisruptionsAllowed: allowed,
		CurrentHealthy: healthy, DesiredHealthy: desired, ExpectedPods: healthy,
	}
	_, err = c.PolicyV1().PodDisruptionBudgets(ns).UpdateStatus(ctx, pdb, metav1.UpdateOptions{})
	return err
}

// RunClaimTemplates plays the resource claim controller until ctx ends:
// for each pod claim made from a ResourceClaimTemplate it creates the
// pod's ResourceClaim (owned by the pod) and records it in the pod's
// status, which is what the scheduler waits for.
func RunClaimTemplates(ctx context.Context, c kubernetes.Interface, errs func(error)) {
	for ctx.Err() == nil {
		if err := claimTemplates(ctx, c); err != nil && ctx.Err() == nil {
			errs(err)
		}
		sleep(ctx, 50*time.Millisecond)
	}
}

func claimTemplates(ctx context.Context, c kubernetes.Interface) error {
	pods, err := c.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range pods.Items {
		pod := &pods.Items[i]
		changed := false
		for _, pc := range pod.Spec.ResourceClaims {
			if pc.ResourceClaimTemplateName == nil || hasClaimStatus(pod, pc.Name) {
				continue
			}
			tmpl, err := c.ResourceV1().ResourceClaimTemplates(pod.Namespace).Get(ctx, *pc.ResourceClaimTemplateName, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("pod %s/%s: template %s: %w", pod.Namespace, pod.Name, *pc.ResourceClaimTemplateName, err)
			}
			yes := true
			claim, err := c.ResourceV1().ResourceClaims(pod.Namespace).Create(ctx, &resourceapi.ResourceClaim{
				ObjectMeta: metav1.ObjectMeta{
					GenerateName:    pod.Name + "-" + pc.Name + "-",
					Annotations:     map[string]string{"resource.kubernetes.io/pod-claim-name": pc.Name},
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID, Controller: &yes, BlockOwnerDeletion: &yes}},
				},
				Spec: tmpl.Spec.Spec,
			}, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("pod %s/%s: claim from %s: %w", pod.Namespace, pod.Name, tmpl.Name, err)
			}
			name := claim.Name
			pod.Status.ResourceClaimStatuses = append(pod.Status.ResourceClaimStatuses, corev1.PodResourceClaimStatus{Name: pc.Name, ResourceClaimName: &name})
			changed = true
		}
		if changed {
			if _, err := c.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("pod %s/%s: claim status: %w", pod.Namespace, pod.Name, err)
			}
		}
	}
	return nil
}

func hasClaimStatus(pod *corev1.Pod, name string) bool {
	for _, s := range pod.Status.ResourceClaimStatuses {
		if s.Name == name {
			return true
		}
	}
	return false
}

// Kubelet plays a node's kubelet for pods that use DRA devices: it asks
// the DRA plugin at Socket to prepare a bound pod's claims and then marks
// the pod Running and Ready; when a pod is being deleted, it asks the
// plugin to unprepare them and deletes the pod for good. Started and
// Stopped hear about each, with the devices the pod got.
type Kubelet struct {
	Node    string
	Client  kubernetes.Interface
	Socket  string
	Started func(pod *corev1.Pod, devices []*drapb.Device)
	Stopped func(pod *corev1.Pod, devices []*drapb.Device)

	mu      sync.Mutex
	errs    []error
	running map[string][]*drapb.Device // pod UID -> devices
}

// Run serves the node until ctx ends.
func (k *Kubelet) Run(ctx context.Context) error {
	conn, err := grpc.NewClient("unix:"+k.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	dra := drapb.NewDRAPluginClient(conn)
	k.mu.Lock()
	k.running = map[string][]*drapb.Device{}
	k.mu.Unlock()
	for ctx.Err() == nil {
		if err := k.sync(ctx, dra); err != nil && ctx.Err() == nil {
			k.fail(err)
		}
		sleep(ctx, 50*time.Millisecond)
	}
	return nil
}

// Errors are what went wrong so far.
func (k *Kubelet) Errors() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return errors.Join(k.errs...)
}

func (k *Kubelet) fail(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.errs) < 20 {
		k.errs = append(k.errs, err)
	}
}

func (k *Kubelet) sync(ctx context.Context, dra drapb.DRAPluginClient) error {
	pods, err := k.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + k.Node})
	if err != nil {
		return err
	}
	for i := range pods.Items {
		pod := &pods.Items[i]
		switch {
		case pod.DeletionTimestamp != nil:
			if err := k.stop(ctx, dra, pod); err != nil {
				return fmt.Errorf("stop pod %s/%s: %w", pod.Namespace, pod.Name, err)
			}
		case pod.Status.Phase == corev1.PodPending || pod.Status.Phase == "":
			if err := k.start(ctx, dra, pod); err != nil {
				return fmt.Errorf("start pod %s/%s: %w", pod.Namespace, pod.Name, err)
			}
		}
	}
	return nil
}

// claims are the pod's claims of the driver's devices, as the kubelet
// hands them to the plugin.
func (k *Kubelet) claims(ctx context.Context, pod *corev1.Pod) ([]*drapb.Claim, error) {
	var out []*drapb.Claim
	for _, pc := range pod.Spec.ResourceClaims {
		name := ""
		switch {
		case pc.ResourceClaimName != nil:
			name = *pc.ResourceClaimName
		default:
			for _, s := range pod.Status.ResourceClaimStatuses {
				if s.Name == pc.Name && s.ResourceClaimName != nil {
					name = *s.ResourceClaimName
				}
			}
		}
		if name == "" {
			return nil, fmt.Errorf("claim %s has no ResourceClaim yet", pc.Name)
		}
		c, err := k.Client.ResourceV1().ResourceClaims(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, &drapb.Claim{Namespace: c.Namespace, Name: c.Name, Uid: string(c.UID)})
	}
	return out, nil
}

func (k *Kubelet) start(ctx context.Context, dra drapb.DRAPluginClient, pod *corev1.Pod) error {
	claims, err := k.claims(ctx, pod)
	if err != nil {
		return err
	}
	var devices []*drapb.Device
	if len(claims) > 0 {
		resp, err := dra.NodePrepareResources(ctx, &drapb.NodePrepareResourcesRequest{Claims: claims})
		if err != nil {
			return fmt.Errorf("NodePrepareResources: %w", err)
		}
		for _, c := range claims {
			r := resp.Claims[c.Uid]
			switch {
			case r == nil:
				return fmt.Errorf("NodePrepareResources: no answer for claim %s", c.Name)
			case r.Error != "":
				return fmt.Errorf("NodePrepareResources: claim %s: %s", c.Name, r.Error)
			}
			devices = append(devices, r.Devices...)
		}
	}
	now := metav1.Now()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.StartTime = &now
	pod.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	if _, err := k.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		return err
	}
	k.mu.Lock()
	k.running[string(pod.UID)] = devices
	k.mu.Unlock()
	if k.Started != nil {
		k.Started(pod, devices)
	}
	return nil
}

func (k *Kubelet) stop(ctx context.Context, dra drapb.DRAPluginClient, pod *corev1.Pod) error {
	claims, err := k.claims(ctx, pod)
	if err != nil {
		return err
	}
	if len(claims) > 0 {
		resp, err := dra.NodeUnprepareResources(ctx, &drapb.NodeUnprepareResourcesRequest{Claims: claims})
		if err != nil {
			return fmt.Errorf("NodeUnprepareResources: %w", err)
		}
		for _, c := range claims {
			if r := resp.Claims[c.Uid]; r == nil || r.Error != "" {
				return fmt.Errorf("NodeUnprepareResources: claim %s: %v", c.Name, r)
			}
		}
	}
	k.mu.Lock()
	devices := k.running[string(pod.UID)]
	delete(k.running, string(pod.UID))
	k.mu.Unlock()
	if k.Stopped != nil {
		k.Stopped(pod, devices)
	}
	var zero int64
	err = k.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
