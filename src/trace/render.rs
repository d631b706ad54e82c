//! Renders traces for people and tools: a numbered narrative (text), a Mermaid sequence
//! diagram, one self-contained HTML page (inline SVG, no network), and JSON.

use std::fmt::Write as _;

use serde_json::json;

use super::model::{Hop, HopId, SCHEMA_VERSION, Trace};

/// The JSON document `rkind trace -o json` prints (see `docs/trace-schema.json`).
pub fn json(traces: &[Trace]) -> serde_json::Value {
    json!({ "schemaVersion": SCHEMA_VERSION, "traces": traces })
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 10 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 10 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn shell_words(cmd: &[String]) -> String {
    cmd.iter()
        .map(|w| {
            if !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,".contains(&b))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One line naming the session.
pub fn headline(t: &Trace) -> String {
    let what = match t.kind.as_str() {
        "exec" => format!("exec {} -- {}", t.pod, shell_words(&t.command)),
        "attach" => format!("attach {}", t.pod),
        other => format!("{other} {}", t.pod),
    };
    let container = if t.container.is_empty() {
        String::new()
    } else {
        format!(" (container {})", t.container)
    };
    format!(
        "{what}{container} — trace {} at {}, {:.1} ms",
        t.trace_id, t.started_at, t.duration_ms
    )
}

/// How the session ended, in words.
pub fn outcome_text(t: &Trace) -> String {
    match &t.outcome {
        None => "still running".into(),
        Some(o) => {
            let mut s = o.status.clone();
            if let Some(code) = o.http_status {
                let _ = write!(s, ", HTTP {code} before the upgrade");
            }
            if let Some(code) = o.exit_code {
                let _ = write!(s, ", exit code {code}");
            }
            if let Some(m) = &o.message {
                let _ = write!(s, " ({m})");
            }
            s
        }
    }
}

/// Why a hop exists, in one sentence (the narrative's explanation).
pub fn why(id: HopId) -> &'static str {
    match id {
        HopId::KubectlToApiserver => {
            "kubectl only ever talks to the API server, which authenticates the client certificate and authorises pods/exec before anything runs."
        }
        HopId::ApiserverToKubelet => {
            "Only the node's kubelet can reach the container runtime, so the API server dials it over mutual TLS (translating a WebSocket client into SPDY)."
        }
        HopId::KubeletToCri => {
            "The kubelet does not run the command: it asks the runtime over CRI gRPC, which answers with a one-shot streaming URL."
        }
        HopId::KubeletToStreamingServer => {
            "The kubelet proxies the upgraded connection to that URL byte for byte (never a redirect)."
        }
        HopId::StreamingServerToProcess => {
            "The runtime's streaming server redeems the token and starts the process inside the container's namespaces, wiring each stream to it."
        }
    }
}

/// The details of one hop, as the narrative prints them (indented lines).
pub fn hop_lines_into(h: &Hop, out: &mut String) {
    hop_lines(h, out)
}

fn hop_lines(h: &Hop, out: &mut String) {
    if let Some(c) = &h.connection {
        let _ = write!(
            out,
            "   connection: {} {} → {}",
            c.transport, c.caller, c.callee
        );
        if let Some(s) = &c.caller_subject {
            let _ = write!(out, "; caller certificate {s}");
        }
        if let Some(s) = &c.callee_subject {
            let _ = write!(out, "; callee certificate {s}");
        }
        out.push('\n');
    }
    if let Some(r) = &h.request {
        let query = if r.query.is_empty() {
            String::new()
        } else {
            let q: Vec<String> = r.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("?{}", q.join("&"))
        };
        let _ = writeln!(out, "   request: {} {}{query}", r.method, r.path);
        let _ = writeln!(
            out,
            "   upgrade: {}, offered [{}] → {} → {}",
            r.upgrade,
            r.offered_protocols.join(", "),
            r.negotiated_protocol.as_deref().unwrap_or("none"),
            status_line(r.status)
        );
    }
    if let Some(g) = &h.grpc {
        let _ = writeln!(out, "   gRPC: {} → {}", g.method, g.code);
        let _ = writeln!(out, "   request: {}", g.request);
        if let Some(u) = &g.response_url {
            let _ = writeln!(out, "   streaming URL: {u}");
        }
    }
    if let Some(p) = &h.process {
        let pid = p.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "   process: pid {pid} on the host, inside container {} (whose main process is pid {}), {}",
            short(&p.container_id),
            p.container_pid,
            if p.tty {
                "on a pseudo-terminal"
            } else {
                "on pipes"
            }
        );
        for ns in &p.namespaces {
            let show = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
            let verdict = match (ns.process.or(ns.container), ns.container, ns.host) {
                (Some(a), Some(b), Some(h)) if a == b && b != h => "container's, not the host's",
                (Some(a), Some(b), Some(h)) if a == b && b == h => "shared with the host",
                _ => "",
            };
            let _ = writeln!(
                out,
                "     {:<4} namespace: process {} container {} host {} {verdict}",
                ns.r#type,
                show(ns.process),
                show(ns.container),
                show(ns.host)
            );
        }
        for r in &p.resizes {
            let _ = writeln!(
                out,
                "     resize to {}x{} at +{:.1} ms",
                r.width, r.height, r.offset_ms
            );
        }
        if let Some(code) = p.exit_code {
            let _ = writeln!(out, "     exit code {code}");
        }
    }
    for s in &h.streams {
        let _ = writeln!(
            out,
            "   {:<7} → {} in {} msg, ← {} in {} msg; {}",
            s.name,
            bytes(s.bytes_in),
            s.messages_in,
            bytes(s.bytes_out),
            s.messages_out,
            s.closed
        );
    }
    if h.bytes_to_callee > 0 || h.bytes_to_caller > 0 {
        let _ = writeln!(
            out,
            "   bytes after the upgrade: {} → {}, {} ← {}",
            bytes(h.bytes_to_callee),
            h.to,
            bytes(h.bytes_to_caller),
            h.to
        );
    }
    if let Some(t) = h.time_to_first_byte_ms {
        let _ = writeln!(out, "   first byte back after {t:.1} ms");
    }
    if !h.closed.is_empty() {
        let _ = writeln!(out, "   ended: {}", h.closed);
    }
    if let Some(e) = &h.error {
        let _ = writeln!(out, "   error: {e}");
    }
}

fn status_line(code: u16) -> String {
    match code {
        101 => "101 Switching Protocols".into(),
        0 => "no answer".into(),
        c => format!(
            "{c} {}",
            http::StatusCode::from_u16(c)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("")
        ),
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(13)]
}

/// The numbered narrative of one session.
pub fn text(t: &Trace) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", headline(t));
    let _ = writeln!(out, "outcome: {}", outcome_text(t));
    for (i, h) in t.hops.iter().enumerate() {
        let _ = writeln!(
            out,
            "\n{}. {} → {}   (+{:.1} ms, {:.1} ms)",
            i + 1,
            h.from,
            h.to,
            h.offset_ms,
            h.duration_ms
        );
        let _ = writeln!(out, "   why: {}", why(h.id));
        hop_lines(h, &mut out);
    }
    out
}

/// One arrow of the sequence diagram.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrow {
    /// Sender.
    pub from: &'static str,
    /// Receiver.
    pub to: &'static str,
    /// Short label.
    pub label: String,
    /// A reply (dashed).
    pub reply: bool,
    /// Everything about the hop, for hover/click.
    pub detail: String,
}

/// The participants, left to right.
pub const PARTICIPANTS: [&str; 6] = [
    "kubectl",
    "API server",
    "kubelet",
    "CRI runtime",
    "streaming server",
    "process",
];

fn participant(name: &str) -> &'static str {
    PARTICIPANTS
        .iter()
        .find(|p| **p == name)
        .copied()
        .unwrap_or("process")
}

/// The session as the arrows of a sequence diagram, in time order: the upgrade
/// requests travel inwards (the CRI call answering at once with the URL), the 101s
/// come back outwards, then the process runs and its status travels back to kubectl.
pub fn arrows(t: &Trace) -> Vec<Arrow> {
    let detail = |h: &Hop| {
        let mut d = String::new();
        hop_lines(h, &mut d);
        d
    };
    let arrow = |h: &Hop, reply: bool, label: String| {
        let (from, to) = (participant(&h.from), participant(&h.to));
        let (from, to) = if reply { (to, from) } else { (from, to) };
        Arrow {
            from,
            to,
            label,
            reply,
            detail: detail(h),
        }
    };
    let mut out = Vec::new();
    let mut upgrades = Vec::new();
    for h in &t.hops {
        if let Some(r) = &h.request {
            let proto = r.negotiated_protocol.as_deref().unwrap_or("");
            let path = r.path.rsplit('/').next().unwrap_or("");
            out.push(arrow(
                h,
                false,
                format!("{} …/{path} Upgrade: {} {proto}", r.method, r.upgrade),
            ));
            upgrades.push(h);
        } else if let Some(g) = &h.grpc {
            out.push(arrow(h, false, g.method.clone()));
            out.push(arrow(
                h,
                true,
                format!("{} url {}", g.code, g.response_url.as_deref().unwrap_or("")),
            ));
        }
    }
    for h in upgrades.iter().rev() {
        let status = h.request.as_ref().map(|r| r.status).unwrap_or(0);
        out.push(arrow(h, true, status_line(status)));
    }
    for h in t
        .hops
        .iter()
        .filter(|h| h.id == HopId::StreamingServerToProcess)
    {
        let (call, reply) = match &h.process {
            Some(_) if t.kind == "attach" => (
                "attach to the container's stdio".to_string(),
                "detached".to_string(),
            ),
            Some(p) => (
                format!(
                    "start {} {}",
                    t.command.first().map(String::as_str).unwrap_or("process"),
                    if p.tty { "(pty)" } else { "(pipes)" }
                ),
                match p.exit_code {
                    Some(c) => format!("exit {c}"),
                    None => "failed to start".into(),
                },
            ),
            None => (format!("connect to {}", h.to), h.closed.clone()),
        };
        out.push(arrow(h, false, call));
        out.push(arrow(h, true, reply));
    }
    if let Some(o) = &t.outcome {
        out.push(Arrow {
            from: if t.hops.len() > 1 {
                "streaming server"
            } else {
                "API server"
            },
            to: "kubectl",
            label: format!("status: {}", outcome_text(t)),
            reply: true,
            detail: format!("{o:?}"),
        });
    }
    out
}

fn mermaid_id(p: &str) -> String {
    p.replace(' ', "_")
}

fn mermaid_text(s: &str) -> String {
    s.replace([';', '#', '\n'], " ")
}

/// A Mermaid `sequenceDiagram` of one session.
pub fn mermaid(t: &Trace) -> String {
    let mut out = String::from("sequenceDiagram\n");
    let _ = writeln!(out, "    %% {}", mermaid_text(&headline(t)));
    for p in PARTICIPANTS {
        let _ = writeln!(out, "    participant {} as {p}", mermaid_id(p));
    }
    for a in arrows(t) {
        let _ = writeln!(
            out,
            "    {}{}{}: {}",
            mermaid_id(a.from),
            if a.reply { "-->>" } else { "->>" },
            mermaid_id(a.to),
            mermaid_text(&a.label)
        );
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One self-contained HTML page: per session a sequence diagram drawn as inline SVG
/// (hover an arrow for its hop, click to pin the details) and the narrative.
pub fn html(traces: &[Trace]) -> String {
    let mut body = String::new();
    for (n, t) in traces.iter().enumerate() {
        let arrows = arrows(t);
        let col = 150.0;
        let row = 34.0;
        let width = col * PARTICIPANTS.len() as f64;
        let height = 60.0 + row * (arrows.len() as f64 + 1.0);
        let x = |p: &str| {
            let i = PARTICIPANTS.iter().position(|q| *q == p).unwrap_or(0);
            col * i as f64 + col / 2.0
        };
        let _ = writeln!(
            body,
            "<section class=\"trace\" data-trace-id=\"{}\"><h2>{}</h2><p class=\"outcome\">outcome: {}</p>",
            esc(&t.trace_id),
            esc(&headline(t)),
            esc(&outcome_text(t))
        );
        let _ = writeln!(
            body,
            "<svg class=\"seq\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"sequence diagram\">"
        );
        for p in PARTICIPANTS {
            let cx = x(p);
            let _ = writeln!(
                body,
                "<g class=\"participant\"><rect x=\"{}\" y=\"8\" width=\"{}\" height=\"28\" rx=\"4\"/><text x=\"{cx}\" y=\"27\">{}</text><line x1=\"{cx}\" y1=\"36\" x2=\"{cx}\" y2=\"{height}\"/></g>",
                cx - col / 2.0 + 8.0,
                col - 16.0,
                esc(p)
            );
        }
        for (i, a) in arrows.iter().enumerate() {
            let y = 60.0 + row * i as f64;
            let (x1, x2) = (x(a.from), x(a.to));
            let dir = if x2 >= x1 { -8.0 } else { 8.0 };
            let _ = writeln!(
                body,
                "<g class=\"arrow{}\" data-index=\"{i}\" data-detail=\"{}\"><title>{}</title><line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\"/><polygon points=\"{x2},{y} {},{} {},{}\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
                if a.reply { " reply" } else { "" },
                esc(&a.detail),
                esc(&a.detail),
                x2 + dir,
                y - 4.0,
                x2 + dir,
                y + 4.0,
                (x1 + x2) / 2.0,
                y - 6.0,
                esc(&a.label)
            );
        }
        let _ = writeln!(
            body,
            "</svg><pre class=\"detail\" id=\"detail-{n}\">click an arrow for its hop</pre><details><summary>narrative</summary><pre>{}</pre></details></section>",
            esc(&text(t))
        );
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rkind trace</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
svg.seq text {{ font-size: 11px; text-anchor: middle; }}
.participant rect {{ fill: #eef3fb; stroke: #4a6fa5; }}
.participant line {{ stroke: #bbb; stroke-dasharray: 4 3; }}
.arrow line {{ stroke: #234; stroke-width: 1.4; }}
.arrow polygon {{ fill: #234; }}
.arrow.reply line {{ stroke-dasharray: 5 3; }}
.arrow:hover line, .arrow.pinned line {{ stroke: #c40; stroke-width: 2.5; }}
.arrow {{ cursor: pointer; }}
pre.detail {{ background: #f6f6f6; padding: .6em; white-space: pre-wrap; }}
</style></head>
<body><h1>rkind trace — {} session(s)</h1>
{body}
<script>
// Click an arrow to pin its hop's details; `#pin=N` in the address pins arrow N of the
// first session on load. The body's data attributes say what was drawn (for tools).
var drawn = 0, laidOut = true;
document.querySelectorAll('section.trace').forEach(function (sec) {{
  var out = sec.querySelector('pre.detail');
  sec.querySelectorAll('g.arrow').forEach(function (g) {{
    drawn++;
    var box = g.getBBox();
    if (!(box.width > 0)) {{ laidOut = false; }}
    g.addEventListener('click', function () {{
      sec.querySelectorAll('g.arrow.pinned').forEach(function (p) {{ p.classList.remove('pinned'); }});
      g.classList.add('pinned');
      out.textContent = g.getAttribute('data-detail');
    }});
  }});
}});
document.body.setAttribute('data-arrows-drawn', String(drawn));
document.body.setAttribute('data-laid-out', String(laidOut && drawn > 0));
var pin = /^#pin=([0-9]+)$/.exec(location.hash);
if (pin) {{
  var g = document.querySelectorAll('section.trace')[0].querySelectorAll('g.arrow')[Number(pin[1])];
  if (g) {{ g.dispatchEvent(new MouseEvent('click', {{ bubbles: true }})); }}
}}
</script>
</body></html>
"#,
        traces.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::model::{GrpcCall, HttpExchange, Outcome, ProcessInfo};

    fn sample() -> Trace {
        let mut a = Hop::start(HopId::KubectlToApiserver);
        a.request = Some(HttpExchange {
            method: "GET".into(),
            path: "/api/v1/namespaces/default/pods/box/exec".into(),
            upgrade: "websocket".into(),
            offered_protocols: vec!["v5.channel.k8s.io".into()],
            negotiated_protocol: Some("v5.channel.k8s.io".into()),
            status: 101,
            ..Default::default()
        });
        let mut c = Hop::start(HopId::KubeletToCri);
        c.grpc = Some(GrpcCall {
            method: "/runtime.v1.RuntimeService/Exec".into(),
            request: json!({"cmd": ["true"]}),
            response_url: Some("http://127.0.0.1:1/exec/********".into()),
            code: "OK".into(),
        });
        let mut p = Hop::start(HopId::StreamingServerToProcess);
        p.process = Some(ProcessInfo {
            exit_code: Some(3),
            tty: true,
            ..Default::default()
        });
        Trace {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            kind: "exec".into(),
            pod: "default/box".into(),
            command: vec!["sh".into(), "-c".into(), "exit 3".into()],
            outcome: Some(Outcome {
                status: "Failure".into(),
                exit_code: Some(3),
                ..Default::default()
            }),
            hops: vec![a, c, p],
            ..Default::default()
        }
    }

    #[test]
    fn narrative_numbers_hops_and_quotes_the_command() {
        let t = text(&sample());
        assert!(t.contains("exec default/box -- sh -c 'exit 3'"), "{t}");
        assert!(t.contains("\n1. kubectl → API server"), "{t}");
        assert!(t.contains("\n2. kubelet → CRI runtime"), "{t}");
        assert!(t.contains("101 Switching Protocols"), "{t}");
        assert!(t.contains("exit code 3"), "{t}");
    }

    #[test]
    fn mermaid_has_calls_replies_and_the_cri_answer_first() {
        let m = mermaid(&sample());
        assert!(m.starts_with("sequenceDiagram\n"));
        let cri_reply = m.find("CRI_runtime-->>kubelet").expect("cri reply");
        let process = m.find("streaming_server->>process").unwrap_or(usize::MAX);
        assert!(m.contains("kubectl->>API_server: GET"), "{m}");
        assert!(cri_reply < process || process == usize::MAX, "{m}");
        assert!(m.contains("API_server-->>kubectl: 101"), "{m}");
    }

    #[test]
    fn html_is_self_contained_and_escaped() {
        let mut t = sample();
        t.command = vec!["<script>".into()];
        let h = html(&[t]);
        assert!(!h.contains("src=\"http"), "no external resources");
        assert!(!h.contains("exec default/box -- <script>"));
        assert!(h.contains("&lt;script&gt;"));
        assert_eq!(h.matches("<g class=\"arrow").count(), 7);
    }
}
