//! `/openapi/v2` in the only form kubectl accepts: the gnostic `openapi_v2.Document`
//! protobuf. kubectl 1.27 and 1.28 read it (instead of OpenAPI v3) to decide whether the
//! server validates fields itself and for `kubectl explain`. This module encodes our
//! Swagger 2.0 JSON document into that protobuf with a small hand-written writer; the
//! field numbers are those of gnostic's OpenAPIv2 message definitions.

use serde_json::Value;

/// The Content-Type of the answer (Go cannot parse the media type kubectl asks for, so
/// the real server answers with a generic one too).
pub const CONTENT_TYPE: &str = "application/octet-stream";

/// A protobuf message being written.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn msg(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    fn boolean(&mut self, field: u32, v: bool) {
        if v {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
    }
}

/// `Any{yaml}`: gnostic keeps free-form values as YAML text; JSON is valid YAML.
fn any(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(2, &serde_json::to_string(v).unwrap_or_default());
    m
}

fn named_any(name: &str, v: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(1, name);
    m.msg(2, any(v));
    m
}

fn vendor_extensions(m: &mut Msg, field: u32, obj: &serde_json::Map<String, Value>) {
    for (k, v) in obj {
        if k.starts_with("x-") {
            m.msg(field, named_any(k, v));
        }
    }
}

/// Encodes a JSON Schema object as a gnostic `Schema`.
fn schema(s: &Value, depth: usize) -> Msg {
    let mut m = Msg::default();
    let Some(o) = s.as_object() else {
        return m;
    };
    if depth > 64 {
        return m;
    }
    let str_of = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("");
    m.string(1, str_of("$ref"));
    m.string(2, str_of("format"));
    m.string(3, str_of("title"));
    m.string(4, str_of("description"));
    if let Some(d) = o.get("default") {
        m.msg(5, any(d));
    }
    if let Some(x) = o.get("maximum").and_then(Value::as_f64) {
        m.double(7, x);
    }
    if let Some(x) = o.get("minimum").and_then(Value::as_f64) {
        m.double(9, x);
    }
    m.int64(11, o.get("maxLength").and_then(Value::as_i64).unwrap_or(0));
    m.int64(12, o.get("minLength").and_then(Value::as_i64).unwrap_or(0));
    m.string(13, str_of("pattern"));
    m.boolean(
        16,
        o.get("uniqueItems")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    );
    if let Some(req) = o.get("required").and_then(Value::as_array) {
        for r in req.iter().filter_map(Value::as_str) {
            m.string(19, r);
        }
    }
    if let Some(e) = o.get("enum").and_then(Value::as_array) {
        for v in e {
            m.msg(20, any(v));
        }
    }
    match o.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut a = Msg::default();
            a.key(2, 0);
            a.varint(u64::from(*b));
            m.msg(21, a);
        }
        Some(v @ Value::Object(_)) => {
            let mut a = Msg::default();
            a.msg(1, schema(v, depth + 1));
            m.msg(21, a);
        }
        _ => {}
    }
    let mut types = Msg::default();
    match o.get("type") {
        Some(Value::String(t)) => types.string(1, t),
        Some(Value::Array(ts)) => {
            for t in ts.iter().filter_map(Value::as_str).filter(|t| *t != "null") {
                types.string(1, t);
            }
        }
        _ => {}
    }
    if !types.0.is_empty() {
        m.msg(22, types);
    }
    if let Some(items) = o.get("items") {
        let mut it = Msg::default();
        match items {
            Value::Array(a) => a.iter().for_each(|i| it.msg(1, schema(i, depth + 1))),
            other => it.msg(1, schema(other, depth + 1)),
        }
        m.msg(23, it);
    }
    if let Some(all) = o.get("allOf").and_then(Value::as_array) {
        for a in all {
            m.msg(24, schema(a, depth + 1));
        }
    }
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        let mut p = Msg::default();
        for (k, v) in props {
            let mut ns = Msg::default();
            ns.string(1, k);
            ns.msg(2, schema(v, depth + 1));
            p.msg(1, ns);
        }
        m.msg(25, p);
    }
    vendor_extensions(&mut m, 31, o);
    m
}

fn parameter(p: &Value) -> Msg {
    let mut sub = Msg::default();
    let inn = p["in"].as_str().unwrap_or("query");
    let mut param = Msg::default();
    if inn == "body" {
        sub.string(2, p["name"].as_str().unwrap_or(""));
        sub.string(3, inn);
        sub.boolean(4, p["required"].as_bool().unwrap_or(false));
        sub.msg(5, schema(&p["schema"], 0));
        param.msg(1, sub);
    } else {
        let mut non_body = Msg::default();
        if inn == "path" {
            sub.boolean(1, true);
            sub.string(2, inn);
            sub.string(4, p["name"].as_str().unwrap_or(""));
            sub.string(5, p["type"].as_str().unwrap_or("string"));
            non_body.msg(4, sub);
        } else {
            sub.boolean(1, p["required"].as_bool().unwrap_or(false));
            sub.string(2, inn);
            sub.string(3, p["description"].as_str().unwrap_or(""));
            sub.string(4, p["name"].as_str().unwrap_or(""));
            sub.string(6, p["type"].as_str().unwrap_or("string"));
            sub.boolean(20, p["uniqueItems"].as_bool().unwrap_or(false));
            non_body.msg(3, sub);
        }
        param.msg(2, non_body);
    }
    let mut item = Msg::default();
    item.msg(1, param);
    item
}

fn operation(op: &Value) -> Msg {
    let mut m = Msg::default();
    let Some(o) = op.as_object() else {
        return m;
    };
    m.string(
        3,
        o.get("description").and_then(Value::as_str).unwrap_or(""),
    );
    m.string(
        5,
        o.get("operationId").and_then(Value::as_str).unwrap_or(""),
    );
    for (field, key) in [(6, "produces"), (7, "consumes")] {
        if let Some(a) = o.get(key).and_then(Value::as_array) {
            for s in a.iter().filter_map(Value::as_str) {
                m.string(field, s);
            }
        }
    }
    if let Some(ps) = o.get("parameters").and_then(Value::as_array) {
        for p in ps {
            m.msg(8, parameter(p));
        }
    }
    if let Some(rs) = o.get("responses").and_then(Value::as_object) {
        let mut responses = Msg::default();
        for (code, r) in rs {
            let mut resp = Msg::default();
            resp.string(1, r["description"].as_str().unwrap_or(""));
            if r.get("schema").is_some() {
                let mut si = Msg::default();
                si.msg(1, schema(&r["schema"], 0));
                resp.msg(2, si);
            }
            let mut rv = Msg::default();
            rv.msg(1, resp);
            let mut named = Msg::default();
            named.string(1, code);
            named.msg(2, rv);
            responses.msg(1, named);
        }
        m.msg(9, responses);
    }
    vendor_extensions(&mut m, 13, o);
    m
}

/// Encodes a Swagger 2.0 JSON document as a gnostic `openapi_v2.Document`.
pub fn encode_document(doc: &Value) -> Vec<u8> {
    let mut d = Msg::default();
    d.string(1, doc["swagger"].as_str().unwrap_or("2.0"));
    let mut info = Msg::default();
    info.string(1, doc["info"]["title"].as_str().unwrap_or(""));
    info.string(2, doc["info"]["version"].as_str().unwrap_or(""));
    d.msg(2, info);
    if let Some(paths) = doc["paths"].as_object() {
        let mut ps = Msg::default();
        for (path, item) in paths {
            let mut pi = Msg::default();
            for (field, verb) in [
                (2, "get"),
                (3, "put"),
                (4, "post"),
                (5, "delete"),
                (8, "patch"),
            ] {
                if item.get(verb).is_some() {
                    pi.msg(field, operation(&item[verb]));
                }
            }
            if let Some(params) = item["parameters"].as_array() {
                for p in params {
                    pi.msg(9, parameter(p));
                }
            }
            let mut named = Msg::default();
            named.string(1, path);
            named.msg(2, pi);
            ps.msg(2, named);
        }
        d.msg(8, ps);
    }
    if let Some(defs) = doc["definitions"].as_object() {
        let mut ds = Msg::default();
        for (name, s) in defs {
            let mut ns = Msg::default();
            ns.string(1, name);
            ns.msg(2, schema(s, 0));
            ds.msg(1, ns);
        }
        d.msg(9, ds);
    }
    d.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_fields_with_gnostic_numbers() {
        let doc = json!({"swagger": "2.0", "info": {"title": "K", "version": "v"}, "paths": {}, "definitions": {"a": {"type": "string"}}});
        let b = encode_document(&doc);
        // field 1 (swagger) = "2.0"
        assert_eq!(&b[..5], &[0x0a, 3, b'2', b'.', b'0']);
        // field 9 (definitions) is present
        assert!(b.windows(1).any(|w| w[0] == 0x4a));
        let reg = crate::apiserver::registry::Registry::builtin();
        let snap = reg.snapshot();
        let full = encode_document(crate::apiserver::openapi::v2(&snap));
        assert!(full.len() > 10_000);
    }
}
