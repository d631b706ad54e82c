//! `GET /debug/rkind/traces` — the cluster's exec/attach/port-forward traces, for
//! `rkind trace`. Who may read it is RBAC's to say, as for any non-resource URL (`get`
//! on the path): cluster-admin may; anyone else only through a role granting it (a debug
//! endpoint shows who connected from where and what ran). `?kind=exec&limit=N` returns `{"schemaVersion":1,"traces":[…]}`; `?follow=true`
//! streams each session as one JSON line when it ends.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use tokio_stream::wrappers::ReceiverStream;

use super::status::ApiError;
use super::{ApiServer, Body, Ctx};

/// The endpoint's path.
pub const PATH: &str = "/debug/rkind/traces";

/// Serves the traces (or follows new ones).
pub fn serve(srv: &Arc<ApiServer>, ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    if ctx.method != http::Method::GET {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            ctx.method
        )));
    }
    let kind = ctx.query.get("kind").cloned().unwrap_or_default();
    if !["", "exec", "attach", "portforward"].contains(&kind.as_str()) {
        return Err(ApiError::bad_request(format!(
            "unknown kind {kind:?}: use exec, attach or portforward"
        )));
    }
    let limit = match ctx.query.get("limit") {
        None => 10,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::bad_request(format!("invalid limit {v:?}")))?,
    };
    if !srv.trace.enabled() {
        return Err(ApiError::unavailable(
            "tracing is turned off for this cluster (RKIND_TRACE=off)",
        ));
    }
    if ctx
        .query
        .get("follow")
        .is_some_and(|v| v == "true" || v == "1")
    {
        let mut rx = srv.trace.follow();
        let (tx, out) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(16);
        let shutdown = srv.shutdown.clone();
        tokio::spawn(async move {
            loop {
                let t = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tx.closed() => return,
                    r = rx.recv() => match r {
                        Ok(t) => t,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return,
                    },
                };
                if !kind.is_empty() && t.kind != kind {
                    continue;
                }
                let mut line = serde_json::to_vec(&t).unwrap_or_default();
                line.push(b'\n');
                if tx.send(Ok(Frame::data(Bytes::from(line)))).await.is_err() {
                    return;
                }
            }
        });
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/x-ndjson")
            .header(header::CACHE_CONTROL, "no-cache, private")
            .body(StreamBody::new(ReceiverStream::new(out)).boxed())
            .map_err(|e| ApiError::internal(e.to_string()));
    }
    let doc = crate::trace::render::json(&srv.trace.recent(&kind, limit));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())).boxed())
        .map_err(|e| ApiError::internal(e.to_string()))
}
