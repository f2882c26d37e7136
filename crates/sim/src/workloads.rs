//! The objects of today's workloads as the API server lists them: Deployments with their
//! ReplicaSets, StatefulSets with their claims and volumes, DaemonSets, CronJobs with their
//! Jobs, and the Ingresses, autoscalers and EndpointSlices around them.
//!
//! Rendered from the model like the seed's kinds (`kube.rs`), shaped like a real API
//! server's answers (`apps/v1`, `batch/v1`, `networking.k8s.io/v1`, `autoscaling/v2`,
//! `discovery.k8s.io/v1`), ownership written as `ownerReferences` with the owners' uids.

use std::collections::HashMap;

use serde_json::{json, Value};

use cluster_insight_kinds::Kind;

use super::kube::{container_spec, kube_time, labels_json, obj, pod_ip, Obj};
use super::model::{Claim, Cluster, Pod, Service, Workload, WorkloadKind};

/// `ownerReferences` naming one controller.
fn owned_by(api_version: &str, kind: &str, name: &str, uid: &str) -> Value {
    json!([{"apiVersion": api_version, "kind": kind, "name": name, "uid": uid,
            "controller": true, "blockOwnerDeletion": true}])
}

/// The `managedFields` a real API server keeps on every object: of no use to a reader, and
/// large on real clusters (the master drops them).
fn managed_fields(manager: &str, created: i64) -> Value {
    json!([{"manager": manager, "operation": "Update", "apiVersion": "apps/v1",
            "time": kube_time(created), "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                         "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {}}}}])
}

fn pod_template(c: &Cluster, w: &Workload) -> Value {
    json!({
        "metadata": {"creationTimestamp": null, "labels": labels_json(&w.labels)},
        "spec": {
            "containers": w.images.iter().enumerate().map(|(k, &image)| {
                container_spec(c, &super::model::container_name(k), image)
            }).collect::<Vec<_>>(),
            "restartPolicy": if w.kind == WorkloadKind::CronJob { "OnFailure" } else { "Always" },
            "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
        },
    })
}

fn metadata(w: &Workload, name: &str, uid: &str, rv: u64, created: i64) -> Value {
    json!({
        "name": name, "namespace": w.namespace, "uid": uid,
        "resourceVersion": rv.to_string(), "generation": 1,
        "creationTimestamp": kube_time(created), "labels": labels_json(&w.labels),
        "managedFields": managed_fields("kube-controller-manager", created),
    })
}

/// Every object of workload `index`, which has `replicas` pods, `ready` of them scheduled:
/// the workload and its child, with their kinds.
fn workload_objects(c: &Cluster, index: usize, replicas: usize, ready: usize) -> Vec<(Kind, Obj)> {
    let w = &c.workloads[index];
    let selector = json!({"matchLabels": labels_json(&w.labels)});
    let mut out = Vec::new();
    match w.kind {
        WorkloadKind::Deployment => {
            let mut meta = metadata(w, &w.name, &w.uid, w.rv, w.created);
            // As `kubectl apply` leaves it: the whole applied object, environment included.
            let applied = json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": w.name, "namespace": w.namespace},
                "spec": {"selector": selector, "template": pod_template(c, w)},
            });
            meta["annotations"] = json!({
                "deployment.kubernetes.io/revision": "1",
                "kubectl.kubernetes.io/last-applied-configuration": format!("{applied}\n"),
            });
            let deployment = json!({
                "metadata": meta,
                "spec": {"replicas": replicas, "selector": selector,
                         "template": pod_template(c, w),
                         "strategy": {"type": "RollingUpdate",
                                      "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                         "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
                "status": {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                           "readyReplicas": ready, "availableReplicas": ready},
            });
            out.push((Kind::DEPLOYMENT, obj(&w.namespace, &w.name, &deployment)));
            if let Some(rs) = &w.child {
                let hash = rs.name.rsplit('-').next().unwrap_or_default();
                let mut labels = w.labels.clone();
                labels.push(("pod-template-hash".into(), hash.to_string()));
                let mut meta = metadata(w, &rs.name, &rs.uid, rs.rv, rs.created);
                meta["labels"] = labels_json(&labels);
                meta["ownerReferences"] = owned_by("apps/v1", "Deployment", &w.name, &w.uid);
                meta["annotations"] = json!({"deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                                             "deployment.kubernetes.io/revision": "1"});
                let mut template = pod_template(c, w);
                template["metadata"]["labels"] = labels_json(&labels);
                let replica_set = json!({
                    "metadata": meta,
                    "spec": {"replicas": replicas, "selector": {"matchLabels": labels_json(&labels)},
                             "template": template},
                    "status": {"replicas": replicas, "fullyLabeledReplicas": replicas,
                               "readyReplicas": ready, "availableReplicas": ready, "observedGeneration": 1},
                });
                out.push((Kind::REPLICA_SET, obj(&w.namespace, &rs.name, &replica_set)));
            }
            out.push((Kind::INGRESS, obj(&w.namespace, &w.name, &ingress(w))));
            out.push((
                Kind::HORIZONTAL_POD_AUTOSCALER,
                obj(&w.namespace, &w.name, &autoscaler(w, replicas)),
            ));
        }
        WorkloadKind::StatefulSet => {
            let statefulset = json!({
                "metadata": metadata(w, &w.name, &w.uid, w.rv, w.created),
                "spec": {"replicas": replicas, "selector": selector, "serviceName": w.name,
                         "template": pod_template(c, w), "podManagementPolicy": "OrderedReady",
                         "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                         "volumeClaimTemplates": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                             "metadata": {"name": "data"},
                             "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                                      "resources": {"requests": {"storage": "1Gi"}}}}]},
                "status": {"observedGeneration": 1, "replicas": replicas, "readyReplicas": ready,
                           "currentReplicas": replicas, "updatedReplicas": replicas,
                           "availableReplicas": ready},
            });
            out.push((Kind::STATEFUL_SET, obj(&w.namespace, &w.name, &statefulset)));
        }
        WorkloadKind::DaemonSet => {
            let daemonset = json!({
                "metadata": metadata(w, &w.name, &w.uid, w.rv, w.created),
                "spec": {"selector": selector, "template": pod_template(c, w),
                         "updateStrategy": {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}},
                "status": {"currentNumberScheduled": replicas, "desiredNumberScheduled": replicas,
                           "numberAvailable": ready, "numberReady": ready, "numberMisscheduled": 0,
                           "observedGeneration": 1, "updatedNumberScheduled": replicas},
            });
            out.push((Kind::DAEMON_SET, obj(&w.namespace, &w.name, &daemonset)));
        }
        WorkloadKind::CronJob => {
            let cronjob = json!({
                "metadata": metadata(w, &w.name, &w.uid, w.rv, w.created),
                "spec": {"schedule": "0 3 * * *", "concurrencyPolicy": "Forbid", "suspend": false,
                         "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                         "jobTemplate": {"metadata": {"creationTimestamp": null},
                                         "spec": {"template": pod_template(c, w)}}},
                "status": {"lastScheduleTime": w.child.as_ref().map(|j| kube_time(j.created))},
            });
            out.push((Kind::CRON_JOB, obj(&w.namespace, &w.name, &cronjob)));
            if let Some(job) = &w.child {
                let mut labels = w.labels.clone();
                labels.push(("job-name".into(), job.name.clone()));
                let mut meta = metadata(w, &job.name, &job.uid, job.rv, job.created);
                meta["labels"] = labels_json(&labels);
                meta["ownerReferences"] = owned_by("batch/v1", "CronJob", &w.name, &w.uid);
                let mut template = pod_template(c, w);
                template["metadata"]["labels"] = labels_json(&labels);
                let job_json = json!({
                    "metadata": meta,
                    "spec": {"parallelism": replicas.max(1), "completions": replicas.max(1),
                             "backoffLimit": 6, "completionMode": "NonIndexed",
                             "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": job.uid}},
                             "template": template},
                    "status": {"active": ready, "startTime": kube_time(job.created)},
                });
                out.push((Kind::JOB, obj(&w.namespace, &job.name, &job_json)));
            }
        }
    }
    out
}

fn ingress(w: &Workload) -> Value {
    json!({
        "metadata": {"name": w.name, "namespace": w.namespace, "uid": w.ingress_uid,
                     "resourceVersion": w.rv.to_string(), "generation": 1,
                     "creationTimestamp": kube_time(w.created + 2000),
                     "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/"}},
        "spec": {"ingressClassName": "nginx",
                 "rules": [{"host": format!("{}.example.com", w.name),
                            "http": {"paths": [{"path": "/", "pathType": "Prefix",
                                "backend": {"service": {"name": w.name, "port": {"number": 80}}}}]}}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}},
    })
}

fn autoscaler(w: &Workload, replicas: usize) -> Value {
    json!({
        "metadata": {"name": w.name, "namespace": w.namespace, "uid": w.autoscaler_uid,
                     "resourceVersion": w.rv.to_string(),
                     "creationTimestamp": kube_time(w.created + 3000)},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": w.name},
                 "minReplicas": 1, "maxReplicas": (replicas * 3).max(2),
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                     "target": {"type": "Utilization", "averageUtilization": 80}}}]},
        "status": {"currentReplicas": replicas, "desiredReplicas": replicas},
    })
}

fn claim_json(claim: &Claim) -> Value {
    json!({
        "metadata": {"name": claim.name, "namespace": claim.namespace, "uid": claim.uid,
                     "resourceVersion": claim.rv.to_string(),
                     "creationTimestamp": kube_time(claim.created),
                     "labels": {"app": claim.name.trim_start_matches("data-")},
                     "annotations": {"pv.kubernetes.io/bind-completed": "yes"},
                     "finalizers": ["kubernetes.io/pvc-protection"]},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                 "resources": {"requests": {"storage": "1Gi"}},
                 "volumeName": claim.volume, "volumeMode": "Filesystem"},
        "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                   "capacity": {"storage": "1Gi"}},
    })
}

fn volume_json(claim: &Claim) -> Value {
    json!({
        "metadata": {"name": claim.volume, "uid": claim.volume_uid,
                     "resourceVersion": claim.rv.to_string(),
                     "creationTimestamp": kube_time(claim.created + 500),
                     "annotations": {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"},
                     "finalizers": ["kubernetes.io/pv-protection"]},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard",
                 "volumeMode": "Filesystem",
                 "hostPath": {"path": format!("/var/local-path-provisioner/{}", claim.volume),
                              "type": "DirectoryOrCreate"},
                 "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                              "namespace": claim.namespace, "name": claim.name, "uid": claim.uid}},
        "status": {"phase": "Bound"},
    })
}

/// Whether `pod` carries every label of `selector`.
pub(crate) fn selects(selector: &[(String, String)], pod: &Pod) -> bool {
    selector
        .iter()
        .all(|(k, v)| pod.labels.iter().any(|(pk, pv)| pk == k && pv == v))
}

/// The scheduled pods (a pending pod has no address) by namespace and label, to find each
/// Service's endpoints without a pass over every pod per Service (thousands of Services
/// and 150,000 pods made that minutes).
pub(crate) struct EndpointIndex<'a> {
    by_label: HashMap<(&'a str, &'a str, &'a str), Vec<&'a Pod>>,
    /// The first scheduled pod that nothing owns, by namespace.
    unowned: HashMap<&'a str, &'a Pod>,
}

impl<'a> EndpointIndex<'a> {
    pub(crate) fn new(c: &'a Cluster) -> EndpointIndex<'a> {
        let mut by_label: HashMap<(&str, &str, &str), Vec<&Pod>> = HashMap::new();
        let mut unowned = HashMap::new();
        for pod in c.pods.iter().filter(|p| p.node.is_some()) {
            for (k, v) in &pod.labels {
                by_label
                    .entry((pod.namespace.as_str(), k.as_str(), v.as_str()))
                    .or_default()
                    .push(pod);
            }
            if pod.controller.is_none() && pod.workload.is_none() {
                unowned.entry(pod.namespace.as_str()).or_insert(pod);
            }
        }
        EndpointIndex { by_label, unowned }
    }

    /// The pods an EndpointSlice of `service` lists, in the cluster's order: for a Service
    /// with a selector, the scheduled pods it selects; for one without, a pod of its
    /// namespace set up by hand (the first scheduled one that nothing owns).
    pub(crate) fn endpoint_pods(&self, service: &Service) -> Vec<&'a Pod> {
        let ns = service.namespace.as_str();
        match &service.selector {
            Some(selector) if !selector.is_empty() => {
                let (k, v) = &selector[0];
                self.by_label
                    .get(&(ns, k.as_str(), v.as_str()))
                    .map(|pods| {
                        pods.iter()
                            .copied()
                            .filter(|p| selects(selector, p))
                            .collect()
                    })
                    .unwrap_or_default()
            }
            _ => self.unowned.get(ns).copied().into_iter().collect(),
        }
    }
}

/// The EndpointSlice of `service` (every Service has one here, as the endpoint controller
/// writes for Services with a selector, and as an operator would for one without).
fn endpoint_slice(c: &Cluster, pods: &EndpointIndex, index: usize, service: &Service) -> Obj {
    let endpoints: Vec<Value> = pods
        .endpoint_pods(service)
        .into_iter()
        .map(|pod| {
            let node = pod.node.map(|n| c.nodes[n].name.clone());
            json!({"addresses": [pod_ip(pod, pod.node.unwrap_or(0))],
                   "conditions": {"ready": true, "serving": true, "terminating": false},
                   "nodeName": node,
                   "targetRef": {"kind": "Pod", "namespace": pod.namespace, "name": pod.name,
                                 "uid": pod.uid}})
        })
        .collect();
    let managed = if service.selector.is_some() {
        "endpointslice-controller.k8s.io"
    } else {
        "operator.example.com"
    };
    let name = format!("{}-{:05x}", service.name, index * 7919 % 0xfffff);
    let slice = json!({
        "metadata": {"name": name, "namespace": service.namespace,
                     "uid": format!("{:08x}-0000-4000-a000-{:012x}", index, index * 7919),
                     "resourceVersion": service.rv.to_string(),
                     "creationTimestamp": kube_time(service.created + 1000),
                     "generateName": format!("{}-", service.name),
                     "labels": {"kubernetes.io/service-name": service.name,
                                "endpointslice.kubernetes.io/managed-by": managed},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": service.name,
                                          "uid": service.uid, "controller": true,
                                          "blockOwnerDeletion": true}]},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    });
    obj(&service.namespace, &name, &slice)
}

/// Every object of the kinds of today, with its kind.
pub(crate) fn objects(c: &Cluster) -> Vec<(Kind, Obj)> {
    let mut out = Vec::new();
    // Pods by workload, in one pass.
    let mut replicas = vec![(0usize, 0usize); c.workloads.len()];
    for pod in &c.pods {
        if let Some(slot) = pod.workload.and_then(|w| replicas.get_mut(w)) {
            slot.0 += 1;
            slot.1 += usize::from(pod.node.is_some());
        }
    }
    for (w, (all, ready)) in replicas.into_iter().enumerate() {
        out.extend(workload_objects(c, w, all, ready));
    }
    for claim in &c.claims {
        out.push((
            Kind::PERSISTENT_VOLUME_CLAIM,
            obj(&claim.namespace, &claim.name, &claim_json(claim)),
        ));
        out.push((
            Kind::PERSISTENT_VOLUME,
            obj("", &claim.volume, &volume_json(claim)),
        ));
    }
    out.extend(endpoint_slices(c));
    out
}

/// The EndpointSlices of every Service: they change with the pods.
pub(crate) fn endpoint_slices(c: &Cluster) -> Vec<(Kind, Obj)> {
    let pods = EndpointIndex::new(c);
    c.services
        .iter()
        .enumerate()
        .map(|(i, s)| (Kind::ENDPOINT_SLICE, endpoint_slice(c, &pods, i, s)))
        .collect()
}
