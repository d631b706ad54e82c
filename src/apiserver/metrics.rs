//! `/metrics`: Prometheus text with upstream's request metrics
//! (`apiserver_request_total` and the `apiserver_request_duration_seconds` histogram, by
//! verb, group, version, resource, subresource and scope), so `kubectl get --raw
//! /metrics` and scrapers see what they see on a real API server.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use http::Method;

use super::kinds::ResourceDef;

/// Upstream's buckets for `apiserver_request_duration_seconds`.
const BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// What a request was, in the metrics' labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestLabels {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`,
    /// `connect` (upper-case in `apiserver_request_total`, as upstream).
    pub verb: &'static str,
    /// API group ("" for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource, or "".
    pub subresource: String,
    /// `resource` (one object), `namespace`, `cluster`.
    pub scope: &'static str,
}

impl RequestLabels {
    /// The labels of a request to `resource` by `method`; `name` and `namespace` are
    /// those of the path, `watch` whether the query asked for a watch.
    pub fn new(
        method: &Method,
        def: &ResourceDef,
        subresource: Option<&str>,
        namespace: Option<&str>,
        name: Option<&str>,
        watch: bool,
    ) -> Self {
        let connect = matches!(
            subresource,
            Some("exec" | "attach" | "portforward" | "proxy")
        );
        let verb = match (method, name.is_some()) {
            _ if connect => "connect",
            (&Method::GET, _) if watch => "watch",
            (&Method::GET, true) => "get",
            (&Method::GET, false) => "list",
            (&Method::POST, _) => "create",
            (&Method::PUT, _) => "update",
            (&Method::PATCH, _) => "patch",
            (&Method::DELETE, true) => "delete",
            (&Method::DELETE, false) => "deletecollection",
            _ => "unknown",
        };
        let scope = if name.is_some() {
            "resource"
        } else if namespace.is_some() {
            "namespace"
        } else {
            "cluster"
        };
        RequestLabels {
            verb,
            group: def.group.clone(),
            version: def.version.clone(),
            resource: def.plural.clone(),
            subresource: subresource.unwrap_or("").into(),
            scope,
        }
    }
}

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Inner {
    totals: BTreeMap<(RequestLabels, u16), u64>,
    durations: BTreeMap<RequestLabels, Histogram>,
}

/// The API server's request metrics.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// Records one request that was answered with `code` after `took`.
    pub fn observe(&self, labels: RequestLabels, code: u16, took: Duration) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *inner.totals.entry((labels.clone(), code)).or_default() += 1;
        let h = inner.durations.entry(labels).or_default();
        if h.counts.is_empty() {
            h.counts = vec![0; BUCKETS.len()];
        }
        let secs = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.\n");
        out.push_str("# TYPE apiserver_request_total counter\n");
        for ((l, code), n) in &inner.totals {
            let _ = writeln!(
                out,
                "apiserver_request_total{{code=\"{code}\",component=\"apiserver\",dry_run=\"\",group=\"{}\",resource=\"{}\",scope=\"{}\",subresource=\"{}\",verb=\"{}\",version=\"{}\"}} {n}",
                l.group,
                l.resource,
                l.scope,
                l.subresource,
                l.verb.to_uppercase(),
                l.version
            );
        }
        out.push_str("# HELP apiserver_request_duration_seconds [STABLE] Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.\n");
        out.push_str("# TYPE apiserver_request_duration_seconds histogram\n");
        for (l, h) in &inner.durations {
            let labels = format!(
                "component=\"apiserver\",dry_run=\"\",group=\"{}\",resource=\"{}\",scope=\"{}\",subresource=\"{}\",verb=\"{}\",version=\"{}\"",
                l.group,
                l.resource,
                l.scope,
                l.subresource,
                l.verb.to_uppercase(),
                l.version
            );
            for (b, n) in BUCKETS.iter().zip(&h.counts) {
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_buckets() {
        let m = Metrics::default();
        let pods = ResourceDef::new("", "v1", "Pod", "pods");
        let l = RequestLabels::new(&Method::GET, &pods, None, Some("d"), None, false);
        assert_eq!(l.verb, "list");
        assert_eq!(l.scope, "namespace");
        m.observe(l.clone(), 200, Duration::from_millis(3));
        m.observe(l, 200, Duration::from_millis(30));
        let text = m.render();
        assert!(text.contains("apiserver_request_total{code=\"200\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"pods\",scope=\"namespace\",subresource=\"\",verb=\"LIST\",version=\"v1\"} 2"), "{text}");
        assert!(text.contains("le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("le=\"0.05\"} 2"), "{text}");
        assert!(
            text.contains("apiserver_request_duration_seconds_count{"),
            "{text}"
        );
        let w = RequestLabels::new(&Method::GET, &pods, None, None, None, true);
        assert_eq!((w.verb, w.scope), ("watch", "cluster"));
        let x = RequestLabels::new(
            &Method::POST,
            &pods,
            Some("exec"),
            Some("d"),
            Some("p"),
            false,
        );
        assert_eq!(x.verb, "connect");
    }
}
