//! `/containerLogs/{namespace}/{pod}/{container}`: finds the container through CRI
//! (ListPodSandbox → ListContainers → ContainerStatus gives the log path, as the real
//! kubelet does) and streams its CRI-format log file as `kubectl logs` expects.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::runtime::cri;
use cri::runtime_service_client::RuntimeServiceClient;

/// The response body type of the kubelet's streaming endpoints.
pub type StreamBodyBox = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// What went wrong, with the HTTP code to answer.
pub struct LogsError {
    /// HTTP status code.
    pub code: u16,
    /// Message (upstream wording where it exists).
    pub message: String,
}

fn err(code: u16, message: impl Into<String>) -> LogsError {
    LogsError {
        code,
        message: message.into(),
    }
}

/// Finds the container (current or, with `previous`, the one before) and its log path.
pub async fn find_log(
    rt: &mut RuntimeServiceClient<Channel>,
    ns: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Result<(String, String), LogsError> {
    let sandboxes = rt
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await
        .map_err(|e| err(500, e.message().to_string()))?
        .into_inner()
        .items;
    let mut sb: Vec<_> = sandboxes
        .into_iter()
        .filter(|s| {
            s.metadata
                .as_ref()
                .is_some_and(|m| m.name == pod && m.namespace == ns)
        })
        .collect();
    sb.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    let Some(sandbox) = sb.first() else {
        return Err(err(
            404,
            format!("pod \"{pod}\" in namespace \"{ns}\" is not running on this node"),
        ));
    };
    let mut cs: Vec<cri::Container> = rt
        .list_containers(cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                pod_sandbox_id: sandbox.id.clone(),
                ..Default::default()
            }),
        })
        .await
        .map_err(|e| err(500, e.message().to_string()))?
        .into_inner()
        .containers
        .into_iter()
        .filter(|c| c.metadata.as_ref().is_some_and(|m| m.name == container))
        .collect();
    cs.sort_by_key(|c| std::cmp::Reverse(c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0)));
    let pick = if previous { cs.get(1) } else { cs.first() };
    let Some(c) = pick else {
        return Err(if previous {
            err(
                400,
                format!("previous terminated container \"{container}\" in pod \"{pod}\" not found"),
            )
        } else {
            err(
                400,
                format!(
                    "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
                ),
            )
        });
    };
    let st = rt
        .container_status(cri::ContainerStatusRequest {
            container_id: c.id.clone(),
            verbose: false,
        })
        .await
        .map_err(|e| err(500, e.message().to_string()))?
        .into_inner()
        .status
        .ok_or_else(|| err(500, "no container status"))?;
    Ok((c.id.clone(), st.log_path))
}

/// Options from the query string.
#[derive(Default, Clone)]
pub struct LogQuery {
    /// Keep streaming.
    pub follow: bool,
    /// Only the last N lines.
    pub tail_lines: Option<i64>,
    /// Prefix lines with their timestamps.
    pub timestamps: bool,
    /// Only lines newer than this many seconds.
    pub since_seconds: Option<i64>,
    /// Stop after this many bytes.
    pub limit_bytes: Option<i64>,
    /// The previous container instance.
    pub previous: bool,
}

impl LogQuery {
    /// Parses the kubelet query string.
    pub fn parse(q: Option<&str>) -> Self {
        let mut o = LogQuery::default();
        for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "follow" => o.follow = v == "true",
                "tailLines" => o.tail_lines = v.parse().ok(),
                "timestamps" => o.timestamps = v == "true",
                "sinceSeconds" => o.since_seconds = v.parse().ok(),
                "limitBytes" => o.limit_bytes = v.parse().ok(),
                "previous" => o.previous = v == "true",
                _ => {}
            }
        }
        o
    }
}

/// One parsed CRI log line.
struct Line<'a> {
    time: &'a str,
    partial: bool,
    content: &'a str,
}

fn parse_line(l: &str) -> Option<Line<'_>> {
    let mut it = l.splitn(4, ' ');
    let time = it.next()?;
    let _stream = it.next()?;
    let tag = it.next()?;
    let content = it.next().unwrap_or("");
    Some(Line {
        time,
        partial: tag == "P",
        content,
    })
}

fn render(text: &str, q: &LogQuery, since: Option<jiff::Timestamp>) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for l in text.lines() {
        let Some(line) = parse_line(l) else { continue };
        if let Some(since) = since
            && line
                .time
                .parse::<jiff::Timestamp>()
                .map(|t| t < since)
                .unwrap_or(false)
        {
            continue;
        }
        if pending.is_empty() && q.timestamps {
            pending.push_str(line.time);
            pending.push(' ');
        }
        pending.push_str(line.content);
        if !line.partial {
            pending.push('\n');
            out.push(std::mem::take(&mut pending));
        }
    }
    if !pending.is_empty() {
        out.push(pending);
    }
    out
}

/// Streams a log file: the existing content (tail/since/limit applied), then, with
/// `follow`, new lines until the container stops running.
pub fn stream(
    mut rt: RuntimeServiceClient<Channel>,
    container_id: String,
    path: String,
    q: LogQuery,
) -> StreamBodyBox {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(16);
    tokio::spawn(async move {
        let since = q
            .since_seconds
            .map(|s| jiff::Timestamp::now() - jiff::SignedDuration::from_secs(s));
        let mut budget = q.limit_bytes.unwrap_or(i64::MAX);
        let mut offset = 0usize;
        let mut first = true;
        loop {
            let data = tokio::fs::read(&path).await.unwrap_or_default();
            if data.len() < offset {
                offset = 0; // rotated or truncated
            }
            let end = data[offset..]
                .iter()
                .rposition(|b| *b == b'\n')
                .map(|p| offset + p + 1)
                .unwrap_or(offset);
            let text = String::from_utf8_lossy(&data[offset..end]).into_owned();
            offset = end;
            let mut lines = render(&text, &q, since);
            if first {
                if let Some(n) = q.tail_lines {
                    let n = n.max(0) as usize;
                    if lines.len() > n {
                        lines.drain(..lines.len() - n);
                    }
                }
                first = false;
            }
            for l in lines {
                let mut b = l.into_bytes();
                if budget <= 0 {
                    return;
                }
                if (b.len() as i64) > budget {
                    b.truncate(budget as usize);
                }
                budget -= b.len() as i64;
                if tx.send(Ok(Frame::data(Bytes::from(b)))).await.is_err() {
                    return;
                }
            }
            if !q.follow {
                return;
            }
            let running = rt
                .container_status(cri::ContainerStatusRequest {
                    container_id: container_id.clone(),
                    verbose: false,
                })
                .await
                .ok()
                .and_then(|r| r.into_inner().status)
                .is_some_and(|s| s.state == cri::ContainerState::ContainerRunning as i32);
            if !running {
                // One last read for what was written just before the exit.
                let data = tokio::fs::read(&path).await.unwrap_or_default();
                if data.len() > offset {
                    let text = String::from_utf8_lossy(&data[offset..]).into_owned();
                    for l in render(&text, &q, since) {
                        let _ = tx.send(Ok(Frame::data(Bytes::from(l)))).await;
                    }
                }
                return;
            }
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    });
    StreamBody::new(ReceiverStream::new(rx)).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cri_lines() {
        let text = "2024-01-01T00:00:00.000000001Z stdout F hello\n2024-01-01T00:00:01Z stderr P par\n2024-01-01T00:00:01Z stderr F tial\n";
        let q = LogQuery::default();
        assert_eq!(render(text, &q, None), vec!["hello\n", "partial\n"]);
        let q = LogQuery {
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(
            render(text, &q, None)[0],
            "2024-01-01T00:00:00.000000001Z hello\n"
        );
    }
}
