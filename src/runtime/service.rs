//! The CRI gRPC server (RuntimeService + ImageService) over a unix socket: the only way
//! the kubelet reaches the runtime. Each RPC converts between the CRI messages and the
//! runtime's records.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::cri;
use super::{ContainerRecord, ContainerStateKind, Runtime, SandboxRecord};
use cri::image_service_server::{ImageService, ImageServiceServer};
use cri::runtime_service_server::{RuntimeService, RuntimeServiceServer};

/// The CRI API version rkind speaks.
pub const CRI_VERSION: &str = "v1";

/// Binds the CRI unix socket (mode 0600), replacing a stale one left by a
/// killed process. Binding before serving means that once this returns,
/// clients can connect: there is no window where they see the old file.
pub fn bind(socket: &Path) -> std::io::Result<tokio::net::UnixListener> {
    let _ = std::fs::remove_file(socket);
    let listener = tokio::net::UnixListener::bind(socket)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves CRI on a listener from [`bind`] until shutdown, then removes the socket.
pub async fn serve(
    runtime: Arc<Runtime>,
    streaming: Arc<super::streaming::StreamingServer>,
    listener: tokio::net::UnixListener,
    socket: &Path,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let svc = CriService {
        rt: runtime,
        streaming,
    };
    let result = tonic::transport::Server::builder()
        .add_service(RuntimeServiceServer::new(svc.clone()))
        .add_service(ImageServiceServer::new(svc))
        .serve_with_incoming_shutdown(
            UnixListenerStream::new(listener),
            shutdown.cancelled_owned(),
        )
        .await;
    let _ = std::fs::remove_file(socket);
    result.map_err(std::io::Error::other)
}

/// The tonic service object.
#[derive(Clone)]
pub struct CriService {
    rt: Arc<Runtime>,
    streaming: Arc<super::streaming::StreamingServer>,
}

/// The caller's trace context (`traceparent` metadata), so the streaming session that
/// redeems the URL is recorded in the same trace.
fn trace_context<T>(r: &Request<T>) -> Option<crate::trace::TraceContext> {
    r.metadata()
        .get(crate::trace::recorder::TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::trace::TraceContext::parse)
}

fn sandbox_state(s: &SandboxRecord) -> i32 {
    if s.ready {
        cri::PodSandboxState::SandboxReady as i32
    } else {
        cri::PodSandboxState::SandboxNotready as i32
    }
}

fn container_state(c: &ContainerRecord) -> i32 {
    match c.state {
        ContainerStateKind::Created => cri::ContainerState::ContainerCreated as i32,
        ContainerStateKind::Running => cri::ContainerState::ContainerRunning as i32,
        ContainerStateKind::Exited => cri::ContainerState::ContainerExited as i32,
    }
}

/// A sandbox's CRI metadata.
pub fn sandbox_metadata(s: &SandboxRecord) -> cri::PodSandboxMetadata {
    sandbox_meta(s)
}

fn sandbox_meta(s: &SandboxRecord) -> cri::PodSandboxMetadata {
    cri::PodSandboxMetadata {
        name: s.name.clone(),
        uid: s.uid.clone(),
        namespace: s.namespace.clone(),
        attempt: s.attempt,
    }
}

fn to_cri_container(c: &ContainerRecord) -> cri::Container {
    cri::Container {
        id: c.id.clone(),
        pod_sandbox_id: c.sandbox_id.clone(),
        metadata: Some(cri::ContainerMetadata {
            name: c.name.clone(),
            attempt: c.attempt,
        }),
        image: Some(cri::ImageSpec {
            image: c.image.clone(),
            ..Default::default()
        }),
        image_ref: c.image_ref.clone(),
        state: container_state(c),
        created_at: c.created_at,
        labels: c.labels.clone(),
        annotations: c.annotations.clone(),
        ..Default::default()
    }
}

fn labels_match(have: &HashMap<String, String>, want: &HashMap<String, String>) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(e.to_string()))?
}

#[tonic::async_trait]
impl RuntimeService for CriService {
    async fn version(
        &self,
        _r: Request<cri::VersionRequest>,
    ) -> Result<Response<cri::VersionResponse>, Status> {
        let _span = tracing::debug_span!(
            "kubelet_to_cri",
            method = "/runtime.v1.RuntimeService/Version"
        )
        .entered();
        Ok(Response::new(cri::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "rkind".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: CRI_VERSION.into(),
        }))
    }

    async fn status(
        &self,
        _r: Request<cri::StatusRequest>,
    ) -> Result<Response<cri::StatusResponse>, Status> {
        let cond = |t: &str| cri::RuntimeCondition {
            r#type: t.into(),
            status: true,
            reason: String::new(),
            message: String::new(),
        };
        // Whether container limits are enforced on this machine; the kubelet shows it
        // as a node condition.
        let mode = self.rt.cgroup_mode();
        let limits = cri::RuntimeCondition {
            r#type: "CgroupLimits".into(),
            status: !matches!(mode, crate::runtime::linux::cgroup::Mode::Unavailable(_)),
            reason: match mode {
                crate::runtime::linux::cgroup::Mode::V2 => "CgroupV2",
                crate::runtime::linux::cgroup::Mode::V1 => "CgroupV1",
                crate::runtime::linux::cgroup::Mode::Unavailable(_) => "CgroupsUnavailable",
            }
            .into(),
            message: mode.describe(),
        };
        Ok(Response::new(cri::StatusResponse {
            status: Some(cri::RuntimeStatus {
                conditions: vec![
                    cond("RuntimeReady"),
                    cond("NetworkReady"),
                    limits,
                    isolation_condition(self.rt.isolation()),
                ],
            }),
            ..Default::default()
        }))
    }

    async fn run_pod_sandbox(
        &self,
        r: Request<cri::RunPodSandboxRequest>,
    ) -> Result<Response<cri::RunPodSandboxResponse>, Status> {
        let cfg = r
            .into_inner()
            .config
            .ok_or_else(|| Status::invalid_argument("config is required"))?;
        let meta = cfg
            .metadata
            .clone()
            .ok_or_else(|| Status::invalid_argument("metadata is required"))?;
        let ns_opts = cfg
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone())
            .unwrap_or_default();
        let node = cri::NamespaceMode::Node as i32;
        let rec = SandboxRecord {
            id: String::new(),
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            attempt: meta.attempt,
            hostname: cfg.hostname,
            log_directory: cfg.log_directory,
            labels: cfg.labels,
            annotations: cfg.annotations,
            created_at: 0,
            ready: false,
            holder_pid: 0,
            host_network: ns_opts.network == node,
            host_pid: ns_opts.pid == node,
            host_ipc: ns_opts.ipc == node,
            share_pid: ns_opts.pid == cri::NamespaceMode::Pod as i32,
            holder: Default::default(),
        };
        let rt = self.rt.clone();
        let id = blocking(move || rt.run_sandbox(rec)).await?;
        Ok(Response::new(cri::RunPodSandboxResponse {
            pod_sandbox_id: id,
        }))
    }

    async fn stop_pod_sandbox(
        &self,
        r: Request<cri::StopPodSandboxRequest>,
    ) -> Result<Response<cri::StopPodSandboxResponse>, Status> {
        let id = r.into_inner().pod_sandbox_id;
        let rt = self.rt.clone();
        blocking(move || rt.stop_sandbox(&id)).await?;
        Ok(Response::new(cri::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        r: Request<cri::RemovePodSandboxRequest>,
    ) -> Result<Response<cri::RemovePodSandboxResponse>, Status> {
        let id = r.into_inner().pod_sandbox_id;
        let rt = self.rt.clone();
        blocking(move || rt.remove_sandbox(&id)).await?;
        Ok(Response::new(cri::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        r: Request<cri::PodSandboxStatusRequest>,
    ) -> Result<Response<cri::PodSandboxStatusResponse>, Status> {
        let s = self.rt.sandbox(&r.into_inner().pod_sandbox_id)?;
        let ns = |host: bool| {
            if host {
                cri::NamespaceMode::Node as i32
            } else {
                cri::NamespaceMode::Pod as i32
            }
        };
        Ok(Response::new(cri::PodSandboxStatusResponse {
            status: Some(cri::PodSandboxStatus {
                id: s.id.clone(),
                metadata: Some(sandbox_meta(&s)),
                state: sandbox_state(&s),
                created_at: s.created_at,
                network: Some(cri::PodSandboxNetworkStatus {
                    ip: if s.host_network {
                        "127.0.0.1".into()
                    } else {
                        String::new()
                    },
                    ..Default::default()
                }),
                linux: Some(cri::LinuxPodSandboxStatus {
                    namespaces: Some(cri::Namespace {
                        options: Some(cri::NamespaceOption {
                            network: ns(s.host_network),
                            pid: ns(s.host_pid),
                            ipc: ns(s.host_ipc),
                            ..Default::default()
                        }),
                    }),
                }),
                labels: s.labels.clone(),
                annotations: s.annotations.clone(),
                runtime_handler: String::new(),
            }),
            ..Default::default()
        }))
    }

    async fn list_pod_sandbox(
        &self,
        r: Request<cri::ListPodSandboxRequest>,
    ) -> Result<Response<cri::ListPodSandboxResponse>, Status> {
        let filter = r.into_inner().filter.unwrap_or_default();
        let items = self
            .rt
            .sandboxes()
            .into_iter()
            .filter(|s| filter.id.is_empty() || s.id.starts_with(&filter.id))
            .filter(|s| {
                filter
                    .state
                    .as_ref()
                    .is_none_or(|st| st.state == sandbox_state(s))
            })
            .filter(|s| labels_match(&s.labels, &filter.label_selector))
            .map(|s| cri::PodSandbox {
                id: s.id.clone(),
                metadata: Some(sandbox_meta(&s)),
                state: sandbox_state(&s),
                created_at: s.created_at,
                labels: s.labels.clone(),
                annotations: s.annotations.clone(),
                runtime_handler: String::new(),
            })
            .collect();
        Ok(Response::new(cri::ListPodSandboxResponse { items }))
    }

    async fn create_container(
        &self,
        r: Request<cri::CreateContainerRequest>,
    ) -> Result<Response<cri::CreateContainerResponse>, Status> {
        let req = r.into_inner();
        let cfg = req
            .config
            .ok_or_else(|| Status::invalid_argument("config is required"))?;
        let meta = cfg
            .metadata
            .clone()
            .ok_or_else(|| Status::invalid_argument("metadata is required"))?;
        let image = cfg
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default();
        let envs: Vec<(String, String)> = cfg
            .envs
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect();
        let mounts = cfg
            .mounts
            .iter()
            .map(|m| (m.host_path.clone(), m.container_path.clone(), m.readonly))
            .collect();
        let linux = cfg.linux.clone().unwrap_or_default();
        let sc = linux.security_context.unwrap_or_default();
        let res = linux.resources.unwrap_or_default();
        let pid_target = sc
            .namespace_options
            .as_ref()
            .filter(|n| n.pid == cri::NamespaceMode::Target as i32)
            .map(|n| n.target_id.clone());
        let id = self.rt.create_container(
            &req.pod_sandbox_id,
            &meta.name,
            meta.attempt,
            &image,
            &cfg.command,
            &cfg.args,
            &cfg.working_dir,
            &envs,
            mounts,
            cfg.labels.clone(),
            cfg.annotations.clone(),
            &cfg.log_path,
            cfg.tty,
            (cfg.stdin, cfg.stdin_once),
            (
                sc.run_as_user.map(|u| u.value),
                sc.run_as_group.map(|g| g.value),
            ),
            (res.memory_limit_in_bytes, res.cpu_quota, res.cpu_period),
        )?;
        if let Some(target) = pid_target
            && let Err(e) = self.rt.set_pid_target(&id, &target)
        {
            let _ = self.rt.remove_container(&id);
            return Err(e);
        }
        Ok(Response::new(cri::CreateContainerResponse {
            container_id: id,
        }))
    }

    async fn start_container(
        &self,
        r: Request<cri::StartContainerRequest>,
    ) -> Result<Response<cri::StartContainerResponse>, Status> {
        let id = r.into_inner().container_id;
        let rt = self.rt.clone();
        blocking(move || rt.start_container(&id)).await?;
        Ok(Response::new(cri::StartContainerResponse {}))
    }

    async fn stop_container(
        &self,
        r: Request<cri::StopContainerRequest>,
    ) -> Result<Response<cri::StopContainerResponse>, Status> {
        let req = r.into_inner();
        let rt = self.rt.clone();
        blocking(move || rt.stop_container_blocking(&req.container_id, req.timeout)).await?;
        Ok(Response::new(cri::StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        r: Request<cri::RemoveContainerRequest>,
    ) -> Result<Response<cri::RemoveContainerResponse>, Status> {
        let id = r.into_inner().container_id;
        let rt = self.rt.clone();
        blocking(move || rt.remove_container(&id)).await?;
        Ok(Response::new(cri::RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        r: Request<cri::ListContainersRequest>,
    ) -> Result<Response<cri::ListContainersResponse>, Status> {
        let filter = r.into_inner().filter.unwrap_or_default();
        let containers = self
            .rt
            .containers_where(|c| {
                (filter.id.is_empty() || c.id.starts_with(&filter.id))
                    && (filter.pod_sandbox_id.is_empty()
                        || c.sandbox_id.starts_with(&filter.pod_sandbox_id))
                    && filter
                        .state
                        .as_ref()
                        .is_none_or(|st| st.state == container_state(c))
                    && labels_match(&c.labels, &filter.label_selector)
            })
            .iter()
            .map(to_cri_container)
            .collect();
        Ok(Response::new(cri::ListContainersResponse { containers }))
    }

    async fn container_status(
        &self,
        r: Request<cri::ContainerStatusRequest>,
    ) -> Result<Response<cri::ContainerStatusResponse>, Status> {
        let req = r.into_inner();
        let c = self.rt.container(&req.container_id)?;
        let mut info = HashMap::new();
        if req.verbose {
            // Like containerd's verbose info: the pid lets node agents enter the container.
            info.insert(
                "info".to_string(),
                serde_json::json!({"pid": c.pid, "sandboxID": c.sandbox_id}).to_string(),
            );
        }
        Ok(Response::new(cri::ContainerStatusResponse {
            info,
            status: Some(cri::ContainerStatus {
                id: c.id.clone(),
                metadata: Some(cri::ContainerMetadata {
                    name: c.name.clone(),
                    attempt: c.attempt,
                }),
                state: container_state(&c),
                created_at: c.created_at,
                started_at: c.started_at,
                finished_at: c.finished_at,
                exit_code: c.exit_code,
                image: Some(cri::ImageSpec {
                    image: c.image.clone(),
                    ..Default::default()
                }),
                image_ref: c.image_ref.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                labels: c.labels.clone(),
                annotations: c.annotations.clone(),
                mounts: c
                    .mounts
                    .iter()
                    .map(|(h, ct, ro)| cri::Mount {
                        host_path: h.clone(),
                        container_path: ct.clone(),
                        readonly: *ro,
                        ..Default::default()
                    })
                    .collect(),
                log_path: c.log_path.clone(),
                ..Default::default()
            }),
        }))
    }

    async fn exec_sync(
        &self,
        r: Request<cri::ExecSyncRequest>,
    ) -> Result<Response<cri::ExecSyncResponse>, Status> {
        let req = r.into_inner();
        let (stdout, stderr, exit_code) = self
            .rt
            .exec_sync(&req.container_id, &req.cmd, req.timeout)
            .await?;
        Ok(Response::new(cri::ExecSyncResponse {
            stdout,
            stderr,
            exit_code,
        }))
    }

    async fn exec(
        &self,
        r: Request<cri::ExecRequest>,
    ) -> Result<Response<cri::ExecResponse>, Status> {
        let trace = trace_context(&r);
        let req = r.into_inner();
        let opts = crate::stream::remotecommand::StreamOptions {
            stdin: req.stdin,
            stdout: req.stdout,
            stderr: req.stderr,
            tty: req.tty,
            command: req.cmd,
            container: String::new(),
        };
        let url = self.streaming.exec_url(&req.container_id, opts, trace)?;
        Ok(Response::new(cri::ExecResponse { url }))
    }

    async fn attach(
        &self,
        r: Request<cri::AttachRequest>,
    ) -> Result<Response<cri::AttachResponse>, Status> {
        let trace = trace_context(&r);
        let req = r.into_inner();
        let opts = crate::stream::remotecommand::StreamOptions {
            stdin: req.stdin,
            stdout: req.stdout,
            stderr: req.stderr,
            tty: req.tty,
            command: Vec::new(),
            container: String::new(),
        };
        let url = self.streaming.attach_url(&req.container_id, opts, trace)?;
        Ok(Response::new(cri::AttachResponse { url }))
    }

    async fn port_forward(
        &self,
        r: Request<cri::PortForwardRequest>,
    ) -> Result<Response<cri::PortForwardResponse>, Status> {
        let trace = trace_context(&r);
        let req = r.into_inner();
        let url = self
            .streaming
            .port_forward_url(&req.pod_sandbox_id, trace)?;
        Ok(Response::new(cri::PortForwardResponse { url }))
    }

    async fn container_stats(
        &self,
        r: Request<cri::ContainerStatsRequest>,
    ) -> Result<Response<cri::ContainerStatsResponse>, Status> {
        let c = self.rt.container(&r.into_inner().container_id)?;
        Ok(Response::new(cri::ContainerStatsResponse {
            stats: Some(super::stats::container(&c)),
        }))
    }

    async fn list_container_stats(
        &self,
        r: Request<cri::ListContainerStatsRequest>,
    ) -> Result<Response<cri::ListContainerStatsResponse>, Status> {
        let f = r.into_inner().filter.unwrap_or_default();
        let stats = self
            .rt
            .containers_where(|c| {
                c.state == ContainerStateKind::Running
                    && (f.id.is_empty() || c.id == f.id)
                    && (f.pod_sandbox_id.is_empty() || c.sandbox_id == f.pod_sandbox_id)
                    && labels_match(&c.labels, &f.label_selector)
            })
            .iter()
            .map(super::stats::container)
            .collect();
        Ok(Response::new(cri::ListContainerStatsResponse { stats }))
    }

    async fn pod_sandbox_stats(
        &self,
        r: Request<cri::PodSandboxStatsRequest>,
    ) -> Result<Response<cri::PodSandboxStatsResponse>, Status> {
        let s = self.rt.sandbox(&r.into_inner().pod_sandbox_id)?;
        let mine = self.rt.containers_where(|c| c.sandbox_id == s.id);
        Ok(Response::new(cri::PodSandboxStatsResponse {
            stats: Some(super::stats::sandbox(&s, &mine)),
        }))
    }

    async fn list_pod_sandbox_stats(
        &self,
        r: Request<cri::ListPodSandboxStatsRequest>,
    ) -> Result<Response<cri::ListPodSandboxStatsResponse>, Status> {
        let f = r.into_inner().filter.unwrap_or_default();
        let containers = self.rt.containers();
        let stats = self
            .rt
            .sandboxes()
            .into_iter()
            .filter(|s| s.ready)
            .filter(|s| f.id.is_empty() || s.id == f.id)
            .filter(|s| labels_match(&s.labels, &f.label_selector))
            .map(|s| super::stats::sandbox(&s, &containers))
            .collect();
        Ok(Response::new(cri::ListPodSandboxStatsResponse { stats }))
    }

    /// The kubelet's pod CIDR and similar: nothing here depends on them (pods have no
    /// cluster network yet), so they are accepted as upstream runtimes do.
    async fn update_runtime_config(
        &self,
        _r: Request<cri::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<cri::UpdateRuntimeConfigResponse>, Status> {
        Ok(Response::new(cri::UpdateRuntimeConfigResponse {}))
    }

    async fn update_container_resources(
        &self,
        r: Request<cri::UpdateContainerResourcesRequest>,
    ) -> Result<Response<cri::UpdateContainerResourcesResponse>, Status> {
        let req = r.into_inner();
        let res = req.linux.unwrap_or_default();
        let limits = crate::runtime::linux::CgroupLimits {
            memory_bytes: res.memory_limit_in_bytes,
            cpu_quota: res.cpu_quota,
            cpu_period: res.cpu_period,
            cpu_shares: u64::try_from(res.cpu_shares).unwrap_or(0),
        };
        let rt = self.rt.clone();
        let id = req.container_id;
        blocking(move || rt.update_container_resources(&id, limits)).await?;
        Ok(Response::new(cri::UpdateContainerResourcesResponse {}))
    }

    async fn reopen_container_log(
        &self,
        r: Request<cri::ReopenContainerLogRequest>,
    ) -> Result<Response<cri::ReopenContainerLogResponse>, Status> {
        let c = self.rt.container(&r.into_inner().container_id)?;
        if c.state != ContainerStateKind::Running {
            return Err(Status::failed_precondition("container is not running"));
        }
        Ok(Response::new(cri::ReopenContainerLogResponse {}))
    }
}

fn image_to_cri(img: &super::images::ImageRecord) -> cri::Image {
    cri::Image {
        id: img.id.clone(),
        repo_tags: img.repo_tags.clone(),
        repo_digests: img.repo_digests.clone(),
        size: img.size,
        spec: Some(cri::ImageSpec {
            image: img.id.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl ImageService for CriService {
    async fn list_images(
        &self,
        _r: Request<cri::ListImagesRequest>,
    ) -> Result<Response<cri::ListImagesResponse>, Status> {
        Ok(Response::new(cri::ListImagesResponse {
            images: self.rt.images.list().iter().map(image_to_cri).collect(),
        }))
    }

    async fn image_status(
        &self,
        r: Request<cri::ImageStatusRequest>,
    ) -> Result<Response<cri::ImageStatusResponse>, Status> {
        let reference = r.into_inner().image.map(|i| i.image).unwrap_or_default();
        // Not found is an empty answer, not an error (CRI semantics).
        let image = self.rt.images.resolve(&reference).map(|i| image_to_cri(&i));
        Ok(Response::new(cri::ImageStatusResponse {
            image,
            info: HashMap::new(),
        }))
    }

    async fn pull_image(
        &self,
        r: Request<cri::PullImageRequest>,
    ) -> Result<Response<cri::PullImageResponse>, Status> {
        let reference = r.into_inner().image.map(|i| i.image).unwrap_or_default();
        match self.rt.images.resolve(&reference) {
            Some(img) => Ok(Response::new(cri::PullImageResponse { image_ref: img.id })),
            None => Err(Status::not_found(format!(
                "rpc error: image {reference:?} is not in rkind's local image store and registry pulls are not supported yet (import it with `rkind load image <oci-archive>`)"
            ))),
        }
    }

    async fn remove_image(
        &self,
        r: Request<cri::RemoveImageRequest>,
    ) -> Result<Response<cri::RemoveImageResponse>, Status> {
        let reference = r.into_inner().image.map(|i| i.image).unwrap_or_default();
        if self.rt.images.resolve(&reference).is_some() {
            self.rt
                .images
                .remove(&reference)
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        Ok(Response::new(cri::RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _r: Request<cri::ImageFsInfoRequest>,
    ) -> Result<Response<cri::ImageFsInfoResponse>, Status> {
        let (bytes, inodes) = self.rt.images.fs_usage();
        let usage = cri::FilesystemUsage {
            timestamp: super::now_ns(),
            fs_id: Some(cri::FilesystemIdentifier {
                mountpoint: "rkind-images".into(),
            }),
            used_bytes: Some(cri::UInt64Value { value: bytes }),
            inodes_used: Some(cri::UInt64Value { value: inodes }),
        };
        Ok(Response::new(cri::ImageFsInfoResponse {
            image_filesystems: vec![usage],
            container_filesystems: vec![],
        }))
    }
}

/// The `Isolation` condition: always true (pods run); the reason names the level (the
/// kubelet copies it into the Node's `rkind.dev/isolation` annotation), the message
/// says how roots are made and what was tried.
fn isolation_condition(i: &crate::runtime::linux::Isolation) -> cri::RuntimeCondition {
    let mut message = i.summary();
    if !i.tried.is_empty() {
        message.push_str(&format!(" (tried: {})", i.tried.join("; ")));
    }
    cri::RuntimeCondition {
        r#type: "Isolation".into(),
        status: true,
        reason: match i.level {
            crate::runtime::linux::Level::Namespaces => "Namespaces",
            crate::runtime::linux::Level::Rootless => "Rootless",
            crate::runtime::linux::Level::Unprivileged => "Unprivileged",
        }
        .into(),
        message,
    }
}
