//! Serving a kind whose objects are computed on every read instead of stored
//! ([`Strategy::live_objects`], ComponentStatus): get and list (selectors, Table), and
//! nothing else, as upstream's REST storage for such a kind implements only Getter and
//! Lister. Every response carries the kind's deprecation warning.

use http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::handlers::{Filter, make_table};
use super::kinds::Strategy;
use super::status::ApiError;
use super::{Body, Ctx, negotiate};

/// Answers a request on the resource of `res` (`name` for one object) from `objects`.
pub fn serve(
    ctx: &Ctx,
    res: &dyn Strategy,
    name: Option<&str>,
    objects: Vec<Value>,
) -> Result<Response<Body>, ApiError> {
    let _span = tracing::debug_span!("live", resource = %res.def().plural).entered();
    let warnings: Vec<String> = res.deprecation_warning().into_iter().collect();
    let respond = |body: &Value| negotiate::object_response(ctx, StatusCode::OK, body, &warnings);
    match (&ctx.method, name) {
        (&Method::GET, None) if matches!(ctx.q("watch"), Some("true" | "1")) => {
            Err(ApiError::method_not_allowed(format!(
                "watch is not supported on resources of kind {:?}",
                res.def().qualified()
            )))
        }
        (&Method::GET, None) => {
            let filter = Filter::from_ctx(ctx, res)?;
            let items: Vec<Value> = objects
                .into_iter()
                .filter(|o| filter.matches(res, o))
                .map(|mut o| {
                    if let Some(m) = o.as_object_mut() {
                        m.remove("kind");
                        m.remove("apiVersion");
                    }
                    o
                })
                .collect();
            if ctx.wants_table() {
                return Ok(respond(&make_table(res, &items, ctx, None, None, true)));
            }
            Ok(respond(&json!({
                "kind": format!("{}List", res.def().kind),
                "apiVersion": res.def().api_version(),
                "metadata": {},
                "items": items,
            })))
        }
        (&Method::GET, Some(n)) => {
            // Upstream's ComponentStatus storage answers an unknown name with a plain
            // error: a 500 with no reason.
            let obj = objects
                .into_iter()
                .find(|o| o["metadata"]["name"] == n)
                .ok_or_else(|| ApiError {
                    code: 500,
                    reason: "",
                    message: format!("Component not found: {n}"),
                    details: None,
                })?;
            if ctx.wants_table() {
                return Ok(respond(&make_table(res, &[obj], ctx, None, None, true)));
            }
            Ok(respond(&obj))
        }
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}
