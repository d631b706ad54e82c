//! Endpoints: the addresses and ports behind a service, validated as upstream does
//! (addresses must be IPs and not special ones, ports 1-65535 and named when there are
//! several), with the `kubectl get endpoints` ENDPOINTS column. Who writes them (the
//! endpoints controller) is not here.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::apiserver::kinds::{ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use crate::apiserver::validation::{
    self, Cause, invalid, invalid_num, is_dns1123_subdomain, not_supported, required,
};

/// The `Endpoints` strategy.
pub struct EndpointsKind {
    def: ResourceDef,
}

impl EndpointsKind {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        EndpointsKind {
            def: ResourceDef::new("", "v1", "Endpoints", "endpoints")
                .short_names(&["ep"])
                .storage("services/endpoints"),
        }
    }
}

impl Default for EndpointsKind {
    fn default() -> Self {
        Self::new()
    }
}

/// Upstream's `SetDefaults_Endpoints`: ports without a protocol are TCP.
fn set_defaults(obj: &mut Value) {
    for ss in obj["subsets"].as_array_mut().into_iter().flatten() {
        for p in ss["ports"].as_array_mut().into_iter().flatten() {
            if let Some(p) = p.as_object_mut() {
                p.entry("protocol").or_insert(json!("TCP"));
            }
        }
    }
}

/// A required cause with a detail (`field.Required(path, detail)`).
fn required_because(field: String, detail: &str) -> Cause {
    let mut c = required(field);
    c.message = format!("Required value: {detail}");
    c
}

/// `validateEndpointAddress`: an IP that is not unspecified, loopback or link-local, a
/// DNS-1123 label hostname, a valid node name.
fn validate_address(addr: &Value, path: &str, out: &mut Vec<Cause>) {
    let ip_text = s(&addr["ip"]);
    let ip_path = format!("{path}.ip");
    let ip = ip_text.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    if ip.is_none() {
        out.push(invalid(
            &ip_path,
            ip_text,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
    }
    if let Some(h) = addr["hostname"].as_str().filter(|h| !h.is_empty()) {
        for m in validation::label_name(h) {
            out.push(invalid(format!("{path}.hostname"), h, &m));
        }
    }
    if let Some(n) = addr["nodeName"].as_str() {
        for m in validation::subdomain_name(n) {
            out.push(invalid(format!("{path}.nodeName"), n, &m));
        }
    }
    let Some(ip) = ip else {
        out.push(invalid(&ip_path, ip_text, "must be a valid IP address"));
        return;
    };
    if ip.is_unspecified() {
        out.push(invalid(
            &ip_path,
            ip_text,
            &format!("may not be unspecified ({ip_text})"),
        ));
    }
    if ip.is_loopback() {
        out.push(invalid(
            &ip_path,
            ip_text,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    let link_local_unicast = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local_unicast {
        out.push(invalid(
            &ip_path,
            ip_text,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    let link_local_multicast = match ip {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.is_multicast() && (v6.segments()[0] & 0x000f) == 0x2,
    };
    if link_local_multicast {
        out.push(invalid(
            &ip_path,
            ip_text,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
}

/// `validateEndpointPort`: a DNS-1123 label name (required when the subset has several
/// ports), a port number, a supported protocol.
fn validate_port(port: &Value, require_name: bool, path: &str, out: &mut Vec<Cause>) {
    let name = s(&port["name"]);
    if require_name && name.is_empty() {
        out.push(required(format!("{path}.name")));
    } else if !name.is_empty() {
        for m in validation::label_name(name) {
            out.push(invalid(format!("{path}.name"), name, &m));
        }
    }
    let num = port["port"].as_i64().unwrap_or(0);
    if !(1..=65535).contains(&num) {
        out.push(invalid_num(
            format!("{path}.port"),
            num,
            "must be between 1 and 65535, inclusive",
        ));
    }
    match port["protocol"].as_str().unwrap_or("") {
        "" => out.push(required(format!("{path}.protocol"))),
        "TCP" | "UDP" | "SCTP" => {}
        p => out.push(not_supported(
            format!("{path}.protocol"),
            p,
            &["SCTP", "TCP", "UDP"],
        )),
    }
    if let Some(ap) = port["appProtocol"].as_str() {
        let (prefix, name) = ap
            .rsplit_once('/')
            .map_or((None, ap), |(p, n)| (Some(p), n));
        if !validation::label_key_ok(ap) {
            let why = if prefix.is_some_and(|p| !is_dns1123_subdomain(p)) {
                "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            } else if name.is_empty() {
                "name part must be non-empty"
            } else {
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            };
            out.push(invalid(format!("{path}.appProtocol"), ap, why));
        }
    }
}

/// The ENDPOINTS cell (upstream's `formatEndpoints`): up to three `ip:port` (or bare IPs
/// for subsets without ports), then ` + N more...`; `<none>` without subsets.
pub fn format_endpoints(obj: &Value) -> String {
    const MAX: usize = 3;
    let subsets = obj["subsets"].as_array().cloned().unwrap_or_default();
    if subsets.is_empty() {
        return "<none>".into();
    }
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in &subsets {
        let addrs = ss["addresses"].as_array().cloned().unwrap_or_default();
        let ports = ss["ports"].as_array().cloned().unwrap_or_default();
        let targets: Vec<Option<i64>> = if ports.is_empty() {
            vec![None]
        } else {
            ports
                .iter()
                .map(|p| Some(p["port"].as_i64().unwrap_or(0)))
                .collect()
        };
        for port in targets {
            count += addrs.len();
            for a in &addrs {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                let ip = s(&a["ip"]);
                list.push(match port {
                    None => ip.to_string(),
                    Some(p) if ip.contains(':') => format!("[{ip}]:{p}"),
                    Some(p) => format!("{ip}:{p}"),
                });
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

impl Strategy for EndpointsKind {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::core::v1::Endpoints);

    fn prepare_for_create(&self, obj: &mut Value) {
        set_defaults(obj);
    }

    fn prepare_for_update(&self, _old: &Value, new: &mut Value) {
        set_defaults(new);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        for (i, ss) in obj["subsets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let base = format!("subsets[{i}]");
            let list = |k: &str| ss[k].as_array().cloned().unwrap_or_default();
            let (ready, not_ready, ports) =
                (list("addresses"), list("notReadyAddresses"), list("ports"));
            if ready.is_empty() && not_ready.is_empty() {
                out.push(required_because(
                    base.clone(),
                    "must specify `addresses` or `notReadyAddresses`",
                ));
            }
            for (j, a) in ready.iter().enumerate() {
                validate_address(a, &format!("{base}.addresses[{j}]"), &mut out);
            }
            for (j, a) in not_ready.iter().enumerate() {
                validate_address(a, &format!("{base}.notReadyAddresses[{j}]"), &mut out);
            }
            for (j, p) in ports.iter().enumerate() {
                validate_port(p, ports.len() > 1, &format!("{base}.ports[{j}]"), &mut out);
            }
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            name_col(),
            col(
                "Endpoints",
                "string",
                0,
                "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.",
            ),
            age_col(),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(format_endpoints(obj)),
            json!(age(obj["metadata"]["creationTimestamp"].as_str(), now)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::validation::invalid_message;

    fn ep(subsets: Value) -> Value {
        json!({"metadata": {"name": "web"}, "subsets": subsets})
    }

    #[test]
    fn ports_default_to_tcp() {
        let mut e = ep(json!([{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]));
        EndpointsKind::new().prepare_for_create(&mut e);
        assert_eq!(e["subsets"][0]["ports"][0]["protocol"], "TCP");
        assert!(EndpointsKind::new().validate(&e).is_empty());
    }

    #[test]
    fn errors_have_upstream_wording() {
        let st = EndpointsKind::new();
        let e = ep(json!([
            {"addresses": [{"ip": "nope"}, {"ip": "127.0.0.1"}],
             "ports": [{"port": 0, "protocol": "TCP"}, {"name": "b", "port": 80, "protocol": "HTTP"}]},
            {"ports": [{"port": 1, "protocol": "TCP"}]}
        ]));
        let text = invalid_message("Endpoints", "web", &st.validate(&e));
        assert_eq!(
            text,
            "Endpoints \"web\" is invalid: [subsets[0].addresses[0].ip: Invalid value: \"nope\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff), \
subsets[0].addresses[0].ip: Invalid value: \"nope\": must be a valid IP address, \
subsets[0].addresses[1].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128), \
subsets[0].ports[0].name: Required value, \
subsets[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive, \
subsets[0].ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\", \
subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`]"
        );
        let special = ep(
            json!([{"addresses": [{"ip": "0.0.0.0"}, {"ip": "169.254.1.1"}, {"ip": "224.0.0.5"}, {"ip": "fe80::1"}]}]),
        );
        let msgs: Vec<String> = st
            .validate(&special)
            .into_iter()
            .map(|c| c.message)
            .collect();
        assert_eq!(
            msgs,
            [
                "Invalid value: \"0.0.0.0\": may not be unspecified (0.0.0.0)",
                "Invalid value: \"169.254.1.1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)",
                "Invalid value: \"224.0.0.5\": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
                "Invalid value: \"fe80::1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)",
            ]
        );
    }

    #[test]
    fn endpoints_cell_truncates_like_upstream() {
        let none = ep(json!([]));
        assert_eq!(format_endpoints(&none), "<none>");
        let two = ep(
            json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}]}]),
        );
        assert_eq!(format_endpoints(&two), "10.0.0.1:80,10.0.0.2:80");
        let many = ep(
            json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}],
            "ports": [{"port": 80}, {"port": 443}]}]),
        );
        assert_eq!(
            format_endpoints(&many),
            "10.0.0.1:80,10.0.0.2:80,[fd00::3]:80 + 3 more..."
        );
        let headless = ep(json!([{"addresses": [{"ip": "10.0.0.9"}]}]));
        assert_eq!(format_endpoints(&headless), "10.0.0.9");
        let st = EndpointsKind::new();
        let cells = st.cells(&two, jiff::Timestamp::now());
        assert_eq!(cells.len(), st.columns().len());
    }
}
