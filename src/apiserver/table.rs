//! Server-side Table printing: the columns and cells `kubectl get` shows, computed the
//! way upstream's printers compute them (pod status reasons, READY, RESTARTS, AGE...).

use serde::Serialize;
use serde_json::{Value, json};

/// One column definition of a Table.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Column {
    /// Header (kubectl upper-cases it).
    pub name: &'static str,
    /// `string`, `integer`, `date`, ...
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `name` on the name column.
    pub format: &'static str,
    /// Short description.
    pub description: &'static str,
    /// 0 always shown, 1 only with `-o wide`.
    pub priority: i32,
}

const fn col(
    name: &'static str,
    kind: &'static str,
    priority: i32,
    description: &'static str,
) -> Column {
    Column {
        name,
        kind,
        format: "",
        description,
        priority,
    }
}

const fn name_col() -> Column {
    Column {
        name: "Name",
        kind: "string",
        format: "name",
        description: "Name must be unique within a namespace.",
        priority: 0,
    }
}

/// Columns for a resource.
pub fn columns(resource: &str, group: &str) -> Vec<Column> {
    let age = col(
        "Age",
        "string",
        0,
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    );
    match (group, resource) {
        ("", "pods") => vec![
            name_col(),
            col(
                "Ready",
                "string",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            age,
            col("IP", "string", 1, "IP address allocated to the pod."),
            col(
                "Node",
                "string",
                1,
                "Name of the node the pod is assigned to.",
            ),
            col(
                "Nominated Node",
                "string",
                1,
                "Name of the node the pod is nominated to.",
            ),
            col(
                "Readiness Gates",
                "string",
                1,
                "Readiness gates of the pod.",
            ),
        ],
        ("", "nodes") => vec![
            name_col(),
            col("Status", "string", 0, "The status of the node"),
            col("Roles", "string", 0, "The roles of the node"),
            age,
            col(
                "Version",
                "string",
                0,
                "Kubelet Version reported by the node.",
            ),
            col(
                "Internal-IP",
                "string",
                1,
                "List of internal IPs of the node.",
            ),
            col(
                "External-IP",
                "string",
                1,
                "List of external IPs of the node.",
            ),
            col("OS-Image", "string", 1, "OS Image reported by the node."),
            col(
                "Kernel-Version",
                "string",
                1,
                "Kernel Version reported by the node.",
            ),
            col(
                "Container-Runtime",
                "string",
                1,
                "Container Runtime Version reported by the node.",
            ),
        ],
        ("", "namespaces") => vec![
            name_col(),
            col("Status", "string", 0, "The status of the namespace"),
            age,
        ],
        (_, "events") => vec![
            col("Last Seen", "string", 0, "Time when last event occurred"),
            col("Type", "string", 0, "Type of this event."),
            col(
                "Reason",
                "string",
                0,
                "Reason why this event was generated.",
            ),
            col("Object", "string", 0, "The object this event is about."),
            col(
                "Subobject",
                "string",
                1,
                "The subobject this event is about.",
            ),
            col("Source", "string", 1, "The component reporting this event."),
            col(
                "Message",
                "string",
                0,
                "A human-readable description of the status of this operation.",
            ),
            col(
                "First Seen",
                "string",
                1,
                "Time when this event occurred first.",
            ),
            col(
                "Count",
                "string",
                1,
                "The number of times this event has occurred.",
            ),
            Column {
                name: "Name",
                kind: "string",
                format: "name",
                description: "Name of the event.",
                priority: 1,
            },
        ],
        ("", "services") => vec![
            name_col(),
            col("Type", "string", 0, "The type of the service."),
            col("Cluster-IP", "string", 0, "The cluster IP of the service."),
            col(
                "External-IP",
                "string",
                0,
                "The external IP of the service.",
            ),
            col("Port(s)", "string", 0, "The ports of the service."),
            age,
            col(
                "Selector",
                "string",
                1,
                "The label selector of the service.",
            ),
        ],
        ("", "configmaps") => vec![
            name_col(),
            col("Data", "integer", 0, "Number of keys."),
            age,
        ],
        ("", "secrets") => vec![
            name_col(),
            col("Type", "string", 0, "The type of the secret"),
            col("Data", "integer", 0, "Number of keys."),
            age,
        ],
        ("", "serviceaccounts") => vec![
            name_col(),
            col("Secrets", "integer", 0, "Number of secrets."),
            age,
        ],
        ("coordination.k8s.io", "leases") => vec![
            name_col(),
            col("Holder", "string", 0, "Holder identity of the lease."),
            age,
        ],
        _ => vec![
            name_col(),
            Column {
                name: "Created At",
                kind: "date",
                format: "",
                description: "Creation time.",
                priority: 0,
            },
        ],
    }
}

/// Upstream's human duration (`95s`, `3m20s`, `42m`, `5h10m`, `30h`, `3d4h`, `12d`, `2y3d`).
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    if s < 120 {
        return format!("{s}s");
    }
    let m = s / 60;
    if m < 10 {
        let rem = s % 60;
        return if rem == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{rem}s")
        };
    }
    if m < 180 {
        return format!("{m}m");
    }
    let h = s / 3600;
    if h < 8 {
        let rem = (s % 3600) / 60;
        return if rem == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{rem}m")
        };
    }
    if h < 48 {
        return format!("{h}h");
    }
    if h < 24 * 8 {
        let d = h / 24;
        let rem = h % 24;
        return if rem == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{rem}h")
        };
    }
    if h < 24 * 365 * 2 {
        return format!("{}d", h / 24);
    }
    let y = h / (24 * 365);
    let d = (h / 24) % 365;
    if d == 0 {
        format!("{y}y")
    } else {
        format!("{y}y{d}d")
    }
}

/// The age cell for an RFC 3339 timestamp.
pub fn age(timestamp: Option<&str>, now: jiff::Timestamp) -> String {
    match timestamp.and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        Some(t) => human_duration((now - t).get_seconds()),
        None => "<unknown>".into(),
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn none_if_empty(v: &str) -> String {
    if v.is_empty() {
        "<none>".into()
    } else {
        v.to_string()
    }
}

/// The pod STATUS column, following upstream's precedence rules.
fn pod_status(pod: &Value) -> String {
    let st = &pod["status"];
    let mut reason = s(&st["phase"]).to_string();
    if !s(&st["reason"]).is_empty() {
        reason = s(&st["reason"]).to_string();
    }
    let init_total = pod["spec"]["initContainers"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    let mut initializing = false;
    for (i, c) in st["initContainerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let term = &c["state"]["terminated"];
        if term.is_object() && term["exitCode"].as_i64() == Some(0) {
            continue;
        }
        if term.is_object() {
            reason = if !s(&term["reason"]).is_empty() {
                format!("Init:{}", s(&term["reason"]))
            } else if let Some(sig) = term["signal"].as_i64().filter(|x| *x != 0) {
                format!("Init:Signal:{sig}")
            } else {
                format!("Init:ExitCode:{}", term["exitCode"].as_i64().unwrap_or(0))
            };
        } else if !s(&c["state"]["waiting"]["reason"]).is_empty()
            && s(&c["state"]["waiting"]["reason"]) != "PodInitializing"
        {
            reason = format!("Init:{}", s(&c["state"]["waiting"]["reason"]));
        } else {
            reason = format!("Init:{i}/{init_total}");
        }
        initializing = true;
        break;
    }
    if !initializing {
        let mut has_running = false;
        for c in st["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .rev()
        {
            let w = &c["state"]["waiting"];
            let t = &c["state"]["terminated"];
            if !s(&w["reason"]).is_empty() {
                reason = s(&w["reason"]).to_string();
            } else if t.is_object() {
                reason = if !s(&t["reason"]).is_empty() {
                    s(&t["reason"]).to_string()
                } else if let Some(sig) = t["signal"].as_i64().filter(|x| *x != 0) {
                    format!("Signal:{sig}")
                } else {
                    format!("ExitCode:{}", t["exitCode"].as_i64().unwrap_or(0))
                };
            } else if c["state"]["running"].is_object() && c["ready"].as_bool() == Some(true) {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            let ready_cond = st["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                .map(|c| s(&c["status"]) == "True");
            reason = if ready_cond == Some(true) {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }
    if pod["metadata"]["deletionTimestamp"].is_string() {
        reason = if s(&st["reason"]) == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    reason
}

fn pod_restarts(pod: &Value, now: jiff::Timestamp) -> String {
    let mut restarts = 0i64;
    let mut last: Option<jiff::Timestamp> = None;
    for list in ["initContainerStatuses", "containerStatuses"] {
        for c in pod["status"][list].as_array().cloned().unwrap_or_default() {
            restarts += c["restartCount"].as_i64().unwrap_or(0);
            if let Some(t) = c["lastState"]["terminated"]["finishedAt"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                && last.is_none_or(|l| t > l)
            {
                last = Some(t);
            }
        }
    }
    match last {
        Some(t) if restarts > 0 => format!(
            "{restarts} ({} ago)",
            human_duration((now - t).get_seconds())
        ),
        _ => restarts.to_string(),
    }
}

/// Cells of one row, in [`columns`] order.
pub fn row_cells(resource: &str, group: &str, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let name = json!(s(&obj["metadata"]["name"]));
    let created = obj["metadata"]["creationTimestamp"].as_str();
    let age_cell = json!(age(created, now));
    match (group, resource) {
        ("", "pods") => {
            let total = obj["spec"]["containers"]
                .as_array()
                .map(|a| a.len())
                .unwrap_or(0);
            let ready = obj["status"]["containerStatuses"]
                .as_array()
                .map(|a| a.iter().filter(|c| c["ready"] == true).count())
                .unwrap_or(0);
            let gates = obj["spec"]["readinessGates"]
                .as_array()
                .map(|g| g.len())
                .unwrap_or(0);
            let gates_cell = if gates == 0 {
                "<none>".to_string()
            } else {
                let ok = obj["spec"]["readinessGates"]
                    .as_array()
                    .map(|gs| {
                        gs.iter()
                            .filter(|g| {
                                obj["status"]["conditions"].as_array().is_some_and(|cs| {
                                    cs.iter().any(|c| {
                                        c["type"] == g["conditionType"] && c["status"] == "True"
                                    })
                                })
                            })
                            .count()
                    })
                    .unwrap_or(0);
                format!("{ok}/{gates}")
            };
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(obj)),
                json!(pod_restarts(obj, now)),
                age_cell,
                json!(none_if_empty(s(&obj["status"]["podIP"]))),
                json!(none_if_empty(s(&obj["spec"]["nodeName"]))),
                json!(none_if_empty(s(&obj["status"]["nominatedNodeName"]))),
                json!(gates_cell),
            ]
        }
        ("", "nodes") => {
            let ready = obj["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                .map(|c| s(&c["status"]).to_string());
            let mut status = match ready.as_deref() {
                Some("True") => "Ready".to_string(),
                Some(_) => "NotReady".to_string(),
                None => "Unknown".to_string(),
            };
            if obj["spec"]["unschedulable"].as_bool() == Some(true) {
                status.push_str(",SchedulingDisabled");
            }
            let mut roles: Vec<String> = obj["metadata"]["labels"]
                .as_object()
                .map(|l| {
                    l.iter()
                        .filter_map(|(k, v)| {
                            if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
                                Some(r.to_string())
                            } else if k == "kubernetes.io/role" {
                                v.as_str().map(String::from)
                            } else {
                                None
                            }
                        })
                        .filter(|r| !r.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            roles.sort();
            let addr = |t: &str| {
                obj["status"]["addresses"]
                    .as_array()
                    .and_then(|a| a.iter().find(|x| x["type"] == t))
                    .map(|x| s(&x["address"]).to_string())
                    .unwrap_or_else(|| "<none>".into())
            };
            let info = &obj["status"]["nodeInfo"];
            vec![
                name,
                json!(status),
                json!(if roles.is_empty() {
                    "<none>".to_string()
                } else {
                    roles.join(",")
                }),
                age_cell,
                json!(s(&info["kubeletVersion"])),
                json!(addr("InternalIP")),
                json!(addr("ExternalIP")),
                json!(none_if_empty(s(&info["osImage"]))),
                json!(none_if_empty(s(&info["kernelVersion"]))),
                json!(none_if_empty(s(&info["containerRuntimeVersion"]))),
            ]
        }
        ("", "namespaces") => vec![name, json!(s(&obj["status"]["phase"])), age_cell],
        (g, "events") => {
            let core = g.is_empty();
            let (inv, src, msg, first, last, count) = if core {
                (
                    &obj["involvedObject"],
                    s(&obj["source"]["component"]).to_string(),
                    s(&obj["message"]),
                    &obj["firstTimestamp"],
                    &obj["lastTimestamp"],
                    obj["count"].as_i64().unwrap_or(1),
                )
            } else {
                (
                    &obj["regarding"],
                    s(&obj["reportingController"]).to_string(),
                    s(&obj["note"]),
                    &obj["deprecatedFirstTimestamp"],
                    &obj["deprecatedLastTimestamp"],
                    obj["deprecatedCount"].as_i64().unwrap_or(1),
                )
            };
            let last_t = last.as_str().or(obj["eventTime"].as_str()).or(created);
            let first_t = first.as_str().or(obj["eventTime"].as_str()).or(created);
            let last_seen = if count > 1 {
                format!("{} (x{count} over {})", age(last_t, now), age(first_t, now))
            } else {
                age(last_t, now)
            };
            let kind = s(&inv["kind"]).to_lowercase();
            vec![
                json!(last_seen),
                json!(s(&obj["type"])),
                json!(s(&obj["reason"])),
                json!(format!("{kind}/{}", s(&inv["name"]))),
                json!(s(&inv["fieldPath"])),
                json!(src),
                json!(msg.trim()),
                json!(age(first_t, now)),
                json!(count.to_string()),
                name,
            ]
        }
        ("", "services") => {
            let spec = &obj["spec"];
            let ty = s(&spec["type"]);
            let ports: Vec<String> = spec["ports"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    let proto = p["protocol"].as_str().unwrap_or("TCP");
                    match p["nodePort"].as_i64() {
                        Some(np) if np > 0 => format!("{}:{np}/{proto}", p["port"]),
                        _ => format!("{}/{proto}", p["port"]),
                    }
                })
                .collect();
            let mut ext: Vec<String> = spec["externalIPs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            if ty == "ExternalName" {
                ext.push(s(&spec["externalName"]).to_string());
            }
            let ext = if ext.is_empty() {
                if ty == "LoadBalancer" {
                    "<pending>".to_string()
                } else {
                    "<none>".to_string()
                }
            } else {
                ext.join(",")
            };
            let mut sel: Vec<String> = spec["selector"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect())
                .unwrap_or_default();
            sel.sort();
            vec![
                name,
                json!(ty),
                json!(none_if_empty(s(&spec["clusterIP"]))),
                json!(ext),
                json!(if ports.is_empty() {
                    "<none>".to_string()
                } else {
                    ports.join(",")
                }),
                age_cell,
                json!(if sel.is_empty() {
                    "<none>".to_string()
                } else {
                    sel.join(",")
                }),
            ]
        }
        ("", "configmaps") => {
            let n = obj["data"].as_object().map(|m| m.len()).unwrap_or(0)
                + obj["binaryData"].as_object().map(|m| m.len()).unwrap_or(0);
            vec![name, json!(n), age_cell]
        }
        ("", "secrets") => {
            let n = obj["data"].as_object().map(|m| m.len()).unwrap_or(0);
            vec![name, json!(s(&obj["type"])), json!(n), age_cell]
        }
        ("", "serviceaccounts") => vec![
            name,
            json!(obj["secrets"].as_array().map(|a| a.len()).unwrap_or(0)),
            age_cell,
        ],
        ("coordination.k8s.io", "leases") => {
            vec![name, json!(s(&obj["spec"]["holderIdentity"])), age_cell]
        }
        _ => vec![name, json!(created.unwrap_or(""))],
    }
}

/// Row conditions: `Completed=True` for finished pods.
pub fn row_conditions(resource: &str, group: &str, obj: &Value) -> Vec<Value> {
    if group.is_empty() && resource == "pods" {
        let phase = s(&obj["status"]["phase"]);
        if phase == "Succeeded" || phase == "Failed" {
            return vec![
                json!({"type": "Completed", "status": "True", "reason": phase, "message": "The pod has completed successfully."}),
            ];
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_duration(95), "95s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(42 * 60), "42m");
        assert_eq!(human_duration(5 * 3600 + 600), "5h10m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(human_duration(12 * 86400), "12d");
        assert_eq!(human_duration(2 * 365 * 86400 + 3 * 86400), "2y3d");
    }

    #[test]
    fn pod_rows() {
        let now: jiff::Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        let running = json!({"metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "web"}], "nodeName": "n"},
            "status": {"phase": "Running", "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0, "state": {"running": {}}}]}});
        let cells = row_cells("pods", "", &running, now);
        assert_eq!(cells[1], "1/1");
        assert_eq!(cells[2], "Running");
        assert_eq!(cells[3], "0");
        assert_eq!(cells[4], "10m");
        assert_eq!(cells[6], "n");
        let crash = json!({"metadata": {"name": "c"}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 2,
              "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-01-01T00:05:00Z"}}}]}});
        let cells = row_cells("pods", "", &crash, now);
        assert_eq!(cells[2], "CrashLoopBackOff");
        assert_eq!(cells[3], "2 (5m ago)");
        let done = json!({"metadata": {"name": "d"}, "spec": {"containers": [{"name": "d"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{"name": "d", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}});
        assert_eq!(row_cells("pods", "", &done, now)[2], "Completed");
        assert_eq!(row_conditions("pods", "", &done)[0]["type"], "Completed");
        let init = json!({"metadata": {"name": "i"}, "spec": {"initContainers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "c"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 0}}}, {"name": "b", "state": {"running": {}}}]}});
        assert_eq!(row_cells("pods", "", &init, now)[2], "Init:1/2");
        let mut term = running.clone();
        term["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:10:00Z");
        assert_eq!(row_cells("pods", "", &term, now)[2], "Terminating");
        let pending = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "p"}]}, "status": {"phase": "Pending"}});
        assert_eq!(row_cells("pods", "", &pending, now)[2], "Pending");
    }

    #[test]
    fn node_and_service_rows() {
        let now = jiff::Timestamp::now();
        let node = json!({"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.32.4"}, "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}});
        let cells = row_cells("nodes", "", &node, now);
        assert_eq!(cells[1], "Ready");
        assert_eq!(cells[2], "control-plane");
        assert_eq!(cells[5], "127.0.0.1");
        let svc = json!({"metadata": {"name": "kubernetes"}, "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "ports": [{"port": 443, "protocol": "TCP"}]}});
        let cells = row_cells("services", "", &svc, now);
        assert_eq!(cells[4], "443/TCP");
        assert_eq!(cells[3], "<none>");
    }
}
