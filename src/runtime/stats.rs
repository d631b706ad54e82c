//! CRI stats (`ContainerStats`, `ListContainerStats`, `PodSandboxStats`,
//! `ListPodSandboxStats`): what each container's cgroup accounted, per container and
//! summed per pod — what `crictl stats` and a kubelet's summary API read.

use super::cri;
use super::{ContainerRecord, ContainerStateKind, SandboxRecord};

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn value(v: Option<u64>) -> Option<cri::UInt64Value> {
    v.map(|value| cri::UInt64Value { value })
}

/// One container's stats (zeros for a container that does not run or has no cgroup).
pub fn container(c: &ContainerRecord) -> cri::ContainerStats {
    let ts = now_ns();
    let usage = match (&c.cgroup, c.state) {
        (Some(cg), ContainerStateKind::Running) => cg.usage(),
        _ => Default::default(),
    };
    cri::ContainerStats {
        attributes: Some(cri::ContainerAttributes {
            id: c.id.clone(),
            metadata: Some(cri::ContainerMetadata {
                name: c.name.clone(),
                attempt: c.attempt,
            }),
            labels: c.labels.clone(),
            annotations: c.annotations.clone(),
        }),
        cpu: Some(cri::CpuUsage {
            timestamp: ts,
            usage_core_nano_seconds: value(Some(usage.cpu_ns.unwrap_or(0))),
            usage_nano_cores: None,
        }),
        memory: Some(cri::MemoryUsage {
            timestamp: ts,
            working_set_bytes: value(Some(usage.working_set_bytes.unwrap_or(0))),
            usage_bytes: value(usage.memory_bytes),
            rss_bytes: value(usage.rss_bytes),
            available_bytes: (c.memory_limit > 0)
                .then(|| {
                    (c.memory_limit as u64).saturating_sub(usage.working_set_bytes.unwrap_or(0))
                })
                .map(|value| cri::UInt64Value { value }),
            ..Default::default()
        }),
        writable_layer: Some(cri::FilesystemUsage {
            timestamp: ts,
            ..Default::default()
        }),
        swap: None,
    }
}

/// A pod's stats: its running containers', summed.
pub fn sandbox(s: &SandboxRecord, containers: &[ContainerRecord]) -> cri::PodSandboxStats {
    let ts = now_ns();
    let mine: Vec<&ContainerRecord> = containers
        .iter()
        .filter(|c| c.sandbox_id == s.id && c.state == ContainerStateKind::Running)
        .collect();
    let stats: Vec<cri::ContainerStats> = mine.iter().map(|c| container(c)).collect();
    let usages: Vec<_> = mine
        .iter()
        .filter_map(|c| c.cgroup.as_ref().map(|cg| cg.usage()))
        .collect();
    let sum = |f: &dyn Fn(&super::linux::cgroup::Usage) -> Option<u64>| {
        usages.iter().filter_map(f).sum::<u64>()
    };
    cri::PodSandboxStats {
        attributes: Some(cri::PodSandboxAttributes {
            id: s.id.clone(),
            metadata: Some(super::service::sandbox_metadata(s)),
            labels: s.labels.clone(),
            annotations: s.annotations.clone(),
        }),
        linux: Some(cri::LinuxPodSandboxStats {
            cpu: Some(cri::CpuUsage {
                timestamp: ts,
                usage_core_nano_seconds: value(Some(sum(&|u| u.cpu_ns))),
                usage_nano_cores: None,
            }),
            memory: Some(cri::MemoryUsage {
                timestamp: ts,
                working_set_bytes: value(Some(sum(&|u| u.working_set_bytes))),
                usage_bytes: value(Some(sum(&|u| u.memory_bytes))),
                rss_bytes: value(Some(sum(&|u| u.rss_bytes))),
                ..Default::default()
            }),
            network: None,
            process: Some(cri::ProcessUsage {
                timestamp: ts,
                process_count: value(Some(sum(&|u| u.processes))),
            }),
            containers: stats,
        }),
        windows: None,
    }
}
