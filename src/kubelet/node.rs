//! Node registration, status and Lease heartbeat: what `kubectl get nodes` and
//! `kubectl describe node` show, taken from the real host (cpu count, memory, kernel).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::KubeletConfig;
use crate::apiserver::defaults::now_rfc3339;
use crate::client::{ApiClient, ClientError};

/// How long a node lease is valid; renewed every quarter of it.
const LEASE_SECONDS: u64 = 40;

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn memory_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn os_image() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// A condition the runtime reports beyond being ready (e.g. `CgroupLimits`), shown on
/// the Node as is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeCondition {
    /// Condition type.
    pub kind: String,
    /// True or False.
    pub status: bool,
    /// Machine-readable reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

fn conditions(now: &str, extra: &[RuntimeCondition]) -> Value {
    let cond = |t: &str, s: &str, reason: &str, msg: &str| {
        json!({"type": t, "status": s, "reason": reason, "message": msg,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let mut list = conditions_base(&cond);
    if let Some(a) = list.as_array_mut() {
        for c in extra {
            a.push(cond(
                &c.kind,
                if c.status { "True" } else { "False" },
                &c.reason,
                &c.message,
            ));
        }
    }
    list
}

/// The kubelet's own conditions: no pressure, Ready.
fn conditions_base(cond: &dyn Fn(&str, &str, &str, &str) -> Value) -> Value {
    json!([
        cond(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        cond(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        cond(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        cond(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status"
        ),
    ])
}

/// The Node object this kubelet registers.
pub fn node_object(
    cfg: &KubeletConfig,
    runtime_version: &str,
    runtime_conditions: &[RuntimeCondition],
) -> Value {
    let now = now_rfc3339();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem = format!("{}Ki", memory_kib());
    let arch = crate::go_arch();
    let capacity =
        json!({"cpu": cpus.to_string(), "memory": mem, "pods": "110", "ephemeral-storage": "0"});
    let boot_id = read_trim("/proc/sys/kernel/random/boot_id");
    let machine_id = read_trim("/etc/machine-id");
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": cfg.node_name,
            "labels": {
                "kubernetes.io/hostname": cfg.node_name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch,
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": arch,
                "node-role.kubernetes.io/control-plane": "",
            },
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "rkind.dev/isolation": runtime_conditions
                    .iter()
                    .find(|c| c.kind == "Isolation")
                    .map_or("unknown".to_string(), |c| c.reason.to_lowercase()),
            },
        },
        "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"], "providerID": format!("rkind://{}", cfg.node_name)},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": conditions(&now, runtime_conditions),
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": cfg.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": cfg.port}},
            "nodeInfo": {
                "machineID": machine_id,
                "systemUUID": machine_id,
                "bootID": boot_id,
                "kernelVersion": read_trim("/proc/sys/kernel/osrelease"),
                "osImage": os_image(),
                "containerRuntimeVersion": runtime_version,
                "kubeletVersion": crate::KUBE_GIT_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": arch,
            },
        },
    })
}

/// Creates (or refreshes) the Node, then its Lease.
pub async fn register(
    api: &ApiClient,
    cfg: &KubeletConfig,
    runtime_version: &str,
    runtime_conditions: &[RuntimeCondition],
) -> Result<(), ClientError> {
    let node = node_object(cfg, runtime_version, runtime_conditions);
    let path = format!("/api/v1/nodes/{}", cfg.node_name);
    match api.post("/api/v1/nodes", &node).await {
        Ok(_) => {
            // Status is not taken from a create (upstream ignores it too): set it.
            api.merge_patch(
                &format!("{path}/status"),
                &json!({"status": node["status"]}),
            )
            .await?;
        }
        Err(e) if e.code() == 409 => {
            api.merge_patch(
                &path,
                &json!({"metadata": {"labels": node["metadata"]["labels"], "annotations": node["metadata"]["annotations"]}, "spec": node["spec"]}),
            )
            .await?;
            api.merge_patch(
                &format!("{path}/status"),
                &json!({"status": node["status"]}),
            )
            .await?;
        }
        Err(e) => return Err(e),
    }
    renew_lease(api, &cfg.node_name).await
}

async fn renew_lease(api: &ApiClient, node: &str) -> Result<(), ClientError> {
    let now = jiff::Timestamp::now();
    let micro = jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%S.%6fZ", now).unwrap_or_default();
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}");
    let patch = json!({"spec": {"holderIdentity": node, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": micro}});
    match api.merge_patch(&path, &patch).await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == 404 => {
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": node, "namespace": "kube-node-lease"},
                "spec": patch["spec"],
            });
            api.post(
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                &lease,
            )
            .await
            .map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// Renews the Lease every 10 s and the Node's condition heartbeats every minute.
pub async fn heartbeat(
    api: Arc<ApiClient>,
    node: String,
    runtime_conditions: Vec<RuntimeCondition>,
    shutdown: CancellationToken,
) {
    let mut lease_tick = tokio::time::interval(Duration::from_secs(LEASE_SECONDS / 4));
    let mut status_tick = tokio::time::interval(Duration::from_secs(60));
    lease_tick.tick().await;
    status_tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = lease_tick.tick() => {
                if let Err(e) = renew_lease(&api, &node).await {
                    tracing::warn!(error = %e, "lease renewal failed");
                }
            }
            _ = status_tick.tick() => {
                let now = now_rfc3339();
                let path = format!("/api/v1/nodes/{node}/status");
                // A strategic merge patch keyed by condition type refreshes the heartbeats.
                let patch = json!({"status": {"conditions": conditions(&now, &runtime_conditions)}});
                if let Err(e) = api
                    .json(http::Method::PATCH, &path, "application/strategic-merge-patch+json", Some(&patch))
                    .await
                {
                    tracing::warn!(error = %e, "node status update failed");
                }
            }
        }
    }
}
