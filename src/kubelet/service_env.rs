//! The environment variables a container gets from Services (upstream's kubelet
//! `getServiceEnvVarMap` and `envvars.FromServices`): `<NAME>_SERVICE_HOST`,
//! `<NAME>_SERVICE_PORT[_<PORTNAME>]` and the Docker-link style `<NAME>_PORT*` variables,
//! for every Service of the pod's namespace with a cluster IP when `enableServiceLinks`
//! is on, and always for the `kubernetes` Service of `default`.
//!
//! Until the pod network exists nothing routes the `kubernetes` Service's cluster IP, so
//! its variables carry the API server's real address instead: that is where a pod on the
//! node's network (hostNetwork, or the unprivileged level's shared loopback) reaches it.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use k8s_openapi::api::core::v1::Service;

use crate::runtime::cri;

/// The Service every pod hears of, whatever its namespace.
const MASTER_SERVICE: &str = "kubernetes";

/// `my-svc` → `MY_SVC`.
fn var_name(s: &str) -> String {
    s.replace('-', "_").to_uppercase()
}

/// The variables for the Services a pod of `namespace` sees, sorted by Service name.
/// `api_server` replaces the `kubernetes` Service's address (see the module doc).
pub fn service_env<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    namespace: &str,
    enable_links: bool,
    api_server: SocketAddr,
) -> Vec<cri::KeyValue> {
    let mut seen: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    for svc in services {
        let ns = svc.metadata.namespace.as_deref().unwrap_or("");
        let name = svc.metadata.name.as_deref().unwrap_or("");
        let Some(spec) = &svc.spec else { continue };
        let ip = spec.cluster_ip.as_deref().unwrap_or("");
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let master = ns == "default" && name == MASTER_SERVICE;
        if !(master || (ns == namespace && enable_links)) {
            continue;
        }
        let mut ports: Vec<(String, String, String)> = spec
            .ports
            .iter()
            .flatten()
            .map(|p| {
                (
                    p.name.clone().unwrap_or_default(),
                    p.port.to_string(),
                    p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                )
            })
            .collect();
        let mut ip = ip.to_string();
        if master {
            ip = api_server.ip().to_string();
            for p in &mut ports {
                p.1 = api_server.port().to_string();
            }
        }
        let entry: Vec<(String, String, String)> =
            std::iter::once((ip, String::new(), String::new()))
                .chain(ports)
                .collect();
        seen.insert(name.to_string(), entry);
    }
    let mut out = Vec::new();
    let mut push = |k: String, v: String| out.push(cri::KeyValue { key: k, value: v });
    for (name, entry) in seen {
        let prefix = var_name(&name);
        let ip = &entry[0].0;
        let ports = &entry[1..];
        let Some(first) = ports.first() else { continue };
        push(format!("{prefix}_SERVICE_HOST"), ip.clone());
        push(format!("{prefix}_SERVICE_PORT"), first.1.clone());
        for (pname, port, _) in ports {
            if !pname.is_empty() {
                push(
                    format!("{prefix}_SERVICE_PORT_{}", var_name(pname)),
                    port.clone(),
                );
            }
        }
        let host_port = |port: &str| match ip.contains(':') {
            true => format!("[{ip}]:{port}"),
            false => format!("{ip}:{port}"),
        };
        for (i, (_, port, proto)) in ports.iter().enumerate() {
            let lower = proto.to_lowercase();
            let url = format!("{lower}://{}", host_port(port));
            if i == 0 {
                push(format!("{prefix}_PORT"), url.clone());
            }
            let pp = format!("{prefix}_PORT_{port}_{}", proto.to_uppercase());
            push(pp.clone(), url);
            push(format!("{pp}_PROTO"), lower);
            push(format!("{pp}_PORT"), port.clone());
            push(format!("{pp}_ADDR"), ip.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(ns: &str, name: &str, ip: &str, ports: serde_json::Value) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": ns, "name": name},
            "spec": {"clusterIP": ip, "ports": ports},
        }))
        .unwrap()
    }

    fn get<'a>(env: &'a [cri::KeyValue], k: &str) -> Option<&'a str> {
        env.iter()
            .find(|kv| kv.key == k)
            .map(|kv| kv.value.as_str())
    }

    #[test]
    fn variables_as_upstream_names_them() {
        let api: SocketAddr = "127.0.0.1:6443".parse().unwrap();
        let services = [
            svc(
                "default",
                "kubernetes",
                "10.96.0.1",
                serde_json::json!([{"name": "https", "port": 443}]),
            ),
            svc(
                "dev",
                "my-web",
                "10.96.3.4",
                serde_json::json!([
                {"port": 80, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}]),
            ),
            svc("dev", "headless", "None", serde_json::json!([{"port": 80}])),
            svc(
                "other",
                "elsewhere",
                "10.96.9.9",
                serde_json::json!([{"port": 80}]),
            ),
        ];
        let env = service_env(&services, "dev", true, api);
        assert_eq!(get(&env, "KUBERNETES_SERVICE_HOST"), Some("127.0.0.1"));
        assert_eq!(get(&env, "KUBERNETES_SERVICE_PORT"), Some("6443"));
        assert_eq!(get(&env, "KUBERNETES_SERVICE_PORT_HTTPS"), Some("6443"));
        assert_eq!(get(&env, "KUBERNETES_PORT"), Some("tcp://127.0.0.1:6443"));
        assert_eq!(get(&env, "MY_WEB_SERVICE_HOST"), Some("10.96.3.4"));
        assert_eq!(get(&env, "MY_WEB_SERVICE_PORT"), Some("80"));
        assert_eq!(get(&env, "MY_WEB_SERVICE_PORT_DNS"), Some("53"));
        assert_eq!(get(&env, "MY_WEB_PORT"), Some("tcp://10.96.3.4:80"));
        assert_eq!(get(&env, "MY_WEB_PORT_53_UDP"), Some("udp://10.96.3.4:53"));
        assert_eq!(get(&env, "MY_WEB_PORT_53_UDP_PROTO"), Some("udp"));
        assert_eq!(get(&env, "MY_WEB_PORT_80_TCP_ADDR"), Some("10.96.3.4"));
        assert_eq!(get(&env, "MY_WEB_PORT_80_TCP_PORT"), Some("80"));
        assert!(get(&env, "HEADLESS_SERVICE_HOST").is_none());
        assert!(get(&env, "ELSEWHERE_SERVICE_HOST").is_none());
        // Without service links only the API server's variables remain.
        let env = service_env(&services, "dev", false, api);
        assert!(get(&env, "MY_WEB_SERVICE_HOST").is_none());
        assert_eq!(get(&env, "KUBERNETES_SERVICE_HOST"), Some("127.0.0.1"));
    }
}
