//! Watch streams: chunked JSON `{"type","object"}` events, resumable from a
//! resourceVersion, with selector transitions (an object that stops matching is sent as
//! DELETED), optional bookmarks, `sendInitialEvents`, and 410 Expired for old versions.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::handlers::{Filter, list_matching, make_table, to_view};
use super::registry::ResourceDef;
use super::status::ApiError;
use super::{ApiServer, Body, Ctx};
use crate::store::{Event, EventType};

/// Encodes watch events for one client (raw objects or one-row Tables; the column
/// definitions go out with the first Table only, as upstream does).
struct Encoder {
    res: &'static ResourceDef,
    table: bool,
    sent_columns: bool,
}

impl Encoder {
    fn line(&mut self, kind: &str, obj: &Value, ctx: &Ctx) -> Bytes {
        let object = if self.table && kind != "BOOKMARK" && kind != "ERROR" {
            let t = make_table(
                self.res,
                std::slice::from_ref(obj),
                ctx,
                None,
                None,
                !self.sent_columns,
            );
            self.sent_columns = true;
            t
        } else {
            obj.clone()
        };
        let mut out =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        out.push(b'\n');
        Bytes::from(out)
    }
}

/// Serves `GET ...?watch=true`.
pub async fn serve(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    res: &'static ResourceDef,
    ns: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let filter = Filter::from_ctx(ctx, res)?;
    let rv_param = ctx.q("resourceVersion").unwrap_or("");
    let send_initial = ctx.q("sendInitialEvents") == Some("true");
    let bookmarks = ctx.q("allowWatchBookmarks") == Some("true");
    let timeout = ctx
        .q("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .unwrap_or(1800);
    let prefix = res.prefix(ns);

    let mut initial = Vec::new();
    let from = if rv_param.is_empty() || rv_param == "0" || send_initial {
        let (items, rv) = list_matching(srv, res, ns, &filter)?;
        initial = items.into_iter().map(|(_, v)| v).collect();
        rv
    } else {
        rv_param
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv_param}")))?
    };
    let sub = srv
        .store
        .watch(&prefix, from)
        .map_err(|e| ApiError::from_store(res, "", e))?;

    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(64);
    let mut enc = Encoder {
        res,
        table: ctx.wants_table(),
        sent_columns: false,
    };
    // The task owns a copy of the request context (Table options).
    let ctx_copy = ctx.clone();
    let shutdown = srv.shutdown.clone();
    tokio::spawn(async move {
        let ctx = ctx_copy;
        let send = |b: Bytes| {
            let tx = tx.clone();
            async move { tx.send(Ok(Frame::data(b))).await.is_ok() }
        };
        for obj in &initial {
            if !send(enc.line("ADDED", obj, &ctx)).await {
                return;
            }
        }
        let mut last_rv = from;
        if send_initial && bookmarks {
            let bm = json!({"kind": res.kind, "apiVersion": res.api_version(),
                "metadata": {"resourceVersion": from.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
            if !send(enc.line("BOOKMARK", &bm, &ctx)).await {
                return;
            }
        }
        let mut live = sub.live;
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(Duration::from_secs(60));
        ticker.tick().await;
        for ev in sub.backlog {
            last_rv = ev.revision;
            if let Some((kind, obj)) = translate(res, &filter, &ev)
                && !send(enc.line(kind, &obj, &ctx)).await
            {
                return;
            }
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    let bm = json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": {"resourceVersion": last_rv.to_string()}});
                    if !send(enc.line("BOOKMARK", &bm, &ctx)).await { return; }
                }
                r = live.recv() => match r {
                    Ok(ev) => {
                        if ev.revision <= last_rv || !ev.key.starts_with(prefix.as_str()) {
                            continue;
                        }
                        last_rv = ev.revision;
                        if let Some((kind, obj)) = translate(res, &filter, &ev)
                            && !send(enc.line(kind, &obj, &ctx)).await { return; }
                    }
                    // Too slow: end the stream; the client re-watches from its last version.
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });
    let body = StreamBody::new(ReceiverStream::new(rx)).boxed();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(body)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Turns a store event into the watch event this client sees, applying selectors the
/// way upstream does (objects entering/leaving the selection become ADDED/DELETED).
fn translate(res: &ResourceDef, filter: &Filter, ev: &Event) -> Option<(&'static str, Value)> {
    let now = to_view(res, &ev.object);
    let now_matches = filter.matches(&now);
    let before = ev
        .previous
        .as_ref()
        .map(|p| filter.matches(&to_view(res, p)));
    match ev.kind {
        EventType::Added => now_matches.then_some(("ADDED", now)),
        EventType::Modified => match (before.unwrap_or(false), now_matches) {
            (true, true) => Some(("MODIFIED", now)),
            (false, true) => Some(("ADDED", now)),
            (true, false) => Some(("DELETED", now)),
            (false, false) => None,
        },
        EventType::Deleted => (before.unwrap_or(now_matches)).then_some(("DELETED", now)),
    }
}
