//! Watch streams: chunked JSON `{"type","object"}` events, resumable from a
//! resourceVersion, with selector transitions (an object that stops matching is sent as
//! DELETED), optional bookmarks, `sendInitialEvents`, and 410 Expired for old versions.
//!
//! The response body is pulled: the next event is read from the store's window and
//! encoded only when the connection has taken the previous one, so a slow or stalled
//! client holds at most one encoded event, never a queue of them. A client the window
//! leaves behind has its stream ended (it re-watches and gets 410 Expired, then
//! relists), as upstream's watch cache ends a watcher that cannot keep up.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use rand::Rng;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::crd::conversion;
use super::handlers::{
    Filter, ListParams, check_list_options, list_views, make_table, wait_until_fresh,
};
use super::kinds::{Kind, Strategy};
use super::negotiate::WatchFramer;
use super::status::ApiError;
use super::{ApiServer, Body, Ctx};
use crate::store::{Cursor, Event, EventType};

/// Upstream's `--min-request-timeout`: a watch without `timeoutSeconds` (or with 0) ends
/// after a random time between this and twice this, so reconnects spread out.
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(1800);

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

/// Encodes watch events for one client (raw objects or one-row Tables; the column
/// definitions go out with the first Table only, as upstream does).
struct Encoder {
    res: Kind,
    table: bool,
    /// Objects as `PartialObjectMetadata` (metadata-only informers).
    metadata: bool,
    sent_columns: bool,
    ctx: Ctx,
    framer: WatchFramer,
}

impl Encoder {
    fn line(&mut self, kind: &str, obj: &Value) -> Bytes {
        if self.table && kind != "BOOKMARK" && kind != "ERROR" {
            let t = make_table(
                &*self.res,
                std::slice::from_ref(obj),
                &self.ctx,
                None,
                None,
                !self.sent_columns,
            );
            self.sent_columns = true;
            return self.framer.frame(kind, &t);
        }
        if self.metadata && kind != "ERROR" {
            return self
                .framer
                .frame(kind, &super::negotiate::partial_metadata(obj));
        }
        self.framer.frame(kind, obj)
    }

    fn bookmark(&mut self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let def = self.res.def();
        let bm = json!({"kind": def.kind, "apiVersion": def.api_version(), "metadata": meta});
        self.line("BOOKMARK", &bm)
    }
}

/// How long the watch may run, from `timeoutSeconds` as upstream reads it.
fn watch_timeout(params: &ListParams) -> Option<Duration> {
    match params.timeout_seconds {
        // Negative: the watch ends at once (upstream's timer fires immediately).
        Some(t) if t < 0 => None,
        Some(t) if t > 0 => Some(Duration::from_secs(t.unsigned_abs())),
        _ => {
            let spread = rand::rng().random_range(0.0..1.0);
            Some(MIN_REQUEST_TIMEOUT.mul_f64(1.0 + spread))
        }
    }
}

/// Serves `GET ...?watch=true`.
pub async fn serve(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    res: Kind,
    ns: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    check_list_options(ctx, true)?;
    let params = ListParams::from_ctx(ctx)?;
    let filter = Filter::from_ctx(ctx, &*res)?;
    let rv_param = ctx.q("resourceVersion").unwrap_or("");
    let send_initial = ctx.q("sendInitialEvents") == Some("true");
    let bookmarks = ctx.q("allowWatchBookmarks") == Some("true");
    let timeout = watch_timeout(&params);
    let prefix = res.def().prefix(ns);
    let mut enc = Encoder {
        res: res.clone(),
        table: ctx.wants_table(),
        metadata: super::negotiate::wants_metadata(ctx),
        sent_columns: false,
        ctx: ctx.clone(),
        framer: WatchFramer::for_request(ctx),
    };

    let requested =
        if rv_param.is_empty() || rv_param == "0" {
            None
        } else {
            Some(rv_param.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("invalid resource version: {rv_param}"))
            })?)
        };
    // With sendInitialEvents the state sent must be at least as new as the version
    // asked for: upstream waits up to 3 s for it, then fails the watch with an ERROR
    // event (the watch itself was accepted).
    if send_initial
        && let Some(rv) = requested
        && let Err(e) = wait_until_fresh(srv, rv).await
    {
        let line = enc.line("ERROR", &e.to_status());
        return respond(&enc.framer, futures_util::stream::iter([line]));
    }
    let mut initial = Vec::new();
    let from = match requested {
        Some(rv) if !send_initial => rv,
        _ => {
            let (items, rv) = list_views(srv, &*res, ns, &filter);
            initial = items.into_iter().map(|(_, v)| v).collect();
            if !enc.metadata {
                initial = conversion::from_store_all(srv, &*res, initial).await?;
            }
            rv
        }
    };
    // A start older than the window is accepted and answered with one ERROR event
    // (410 Expired), as upstream's watch cache does: clients relist on that event.
    let cursor = match srv.store.watch(&prefix, from) {
        Ok(c) => c,
        Err(e @ crate::store::StoreError::Expired { .. }) => {
            let line = enc.line("ERROR", &ApiError::from_store(res.def(), "", e).to_status());
            return respond(&enc.framer, futures_util::stream::iter([line]));
        }
        Err(e) => return Err(ApiError::from_store(res.def(), "", e)),
    };
    let Some(timeout) = timeout else {
        return respond(&enc.framer, futures_util::stream::empty());
    };

    let initial_end = (send_initial && bookmarks).then_some(from);
    let state = Watch {
        srv: srv.clone(),
        res,
        filter,
        enc,
        cursor,
        initial: initial.into_iter(),
        initial_end,
        batch: VecDeque::new(),
        deadline: Box::pin(tokio::time::sleep(timeout)),
        ticker: bookmarks.then(|| {
            tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY)
        }),
        shutdown: srv.shutdown.clone(),
    };
    let content_type = state.enc.framer.content_type();
    respond_ct(
        content_type,
        futures_util::stream::unfold(state, |mut w| async move {
            let line = w.next_line().await?;
            Some((line, w))
        }),
    )
}

/// The 200 response whose body is `lines`, framed by `framer`.
fn respond(
    framer: &WatchFramer,
    lines: impl futures_util::Stream<Item = Bytes> + Send + Sync + 'static,
) -> Result<Response<Body>, ApiError> {
    respond_ct(framer.content_type(), lines)
}

/// The 200 response whose body is `lines`, of media type `content_type`.
fn respond_ct(
    content_type: &'static str,
    lines: impl futures_util::Stream<Item = Bytes> + Send + Sync + 'static,
) -> Result<Response<Body>, ApiError> {
    use futures_util::StreamExt;
    let body = BodyExt::boxed(StreamBody::new(lines.map(|b| Ok(Frame::data(b)))));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(body)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// One watch's state between the lines it sends.
struct Watch {
    srv: Arc<ApiServer>,
    res: Kind,
    filter: Filter,
    enc: Encoder,
    cursor: Cursor,
    /// The initial state (ADDED events) still to send, shared with the store.
    initial: std::vec::IntoIter<Arc<Value>>,
    /// The revision of the initial-events-end bookmark still to send.
    initial_end: Option<u64>,
    /// Events read from the window, not yet sent.
    batch: VecDeque<Event>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    ticker: Option<tokio::time::Interval>,
    shutdown: CancellationToken,
}

impl Watch {
    /// The next line to send, or None when the watch is over (timeout, shutdown, the
    /// window left this watcher behind, or the store went away).
    async fn next_line(&mut self) -> Option<Bytes> {
        loop {
            if self.shutdown.is_cancelled() || self.deadline.is_elapsed() {
                return None;
            }
            if let Some(obj) = self.initial.next() {
                return Some(self.enc.line("ADDED", &obj));
            }
            if let Some(rv) = self.initial_end.take() {
                return Some(self.enc.bookmark(rv, true));
            }
            if let Some(ev) = self.batch.pop_front() {
                let Some((kind, obj)) = translate(&*self.res, &self.filter, &ev) else {
                    continue;
                };
                if self.enc.metadata || self.res.conversion_webhook().is_none() {
                    return Some(self.enc.line(kind, &obj));
                }
                // A conversion that fails is this event's ERROR; the watch goes on.
                return Some(
                    match conversion::from_store(&self.srv, &*self.res, Arc::new(obj)).await {
                        Ok(obj) => self.enc.line(kind, &obj),
                        Err(e) => self.enc.line("ERROR", &e.to_status()),
                    },
                );
            }
            match self.srv.store.next_events(&mut self.cursor) {
                Ok(evs) if !evs.is_empty() => {
                    self.batch.extend(evs);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, resource = %self.res.def().plural, "watcher left behind by the window; ending its stream");
                    return None;
                }
            }
            let tick = async {
                match self.ticker.as_mut() {
                    Some(t) => {
                        t.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                _ = &mut self.deadline => return None,
                _ = tick => {
                    let rv = self.cursor.revision();
                    return Some(self.enc.bookmark(rv, false));
                }
                more = self.cursor.changed() => if !more { return None },
            }
        }
    }
}

/// Turns a store event into the watch event this client sees, applying selectors the
/// way upstream does (objects entering/leaving the selection become ADDED/DELETED).
fn translate(res: &dyn Strategy, filter: &Filter, ev: &Event) -> Option<(&'static str, Value)> {
    let view = |v: Value| {
        if res.stored_is_view() {
            v
        } else {
            res.to_view(&v)
        }
    };
    let now = match ev.object() {
        Ok(v) => view(v),
        Err(e) => {
            tracing::error!(error = %e, key = &*ev.key, "undecodable event in the watch window");
            return None;
        }
    };
    let now_matches = filter.matches(res, &now);
    let before = if filter.labels.is_empty() && filter.fields.is_empty() {
        // Everything matches: the previous state need not be decoded.
        ev.previous.as_ref().map(|_| true)
    } else {
        ev.previous()
            .ok()
            .flatten()
            .map(|p| filter.matches(res, &view(p)))
    };
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Reads share stored objects uncopied when a kind says its view is the stored form
    /// (`Strategy::stored_is_view`), so every kind file that converts views (overrides
    /// `to_view`) must say it does not.
    #[test]
    fn kinds_that_convert_views_say_so() {
        fn walk(dir: &Path, trait_file: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("read kinds") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    walk(&path, trait_file, out);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") || path == trait_file {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("read source");
                if text.contains("fn to_view(") && !text.contains("fn stored_is_view(") {
                    out.push(path.display().to_string());
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/apiserver/kinds");
        let mut found = Vec::new();
        walk(&root, &root.join("mod.rs"), &mut found);
        assert!(
            found.is_empty(),
            "kinds overriding to_view without stored_is_view: {found:?}"
        );
    }
}
