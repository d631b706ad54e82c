//! Label and field selectors, as `labelSelector` / `fieldSelector` query parameters
//! carry them: parsed once per request, matched against JSON objects.

use serde_json::{Map, Value};

/// A selector that could not be parsed or uses an unsupported field; the message goes
/// into a 400 Status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

/// Parsed `labelSelector`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    reqs: Vec<(String, Op)>,
}

fn valid_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

fn validate_key(k: &str) -> Result<(), SelectorError> {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix
        && (p.is_empty() || p.len() > 253 || !crate::apiserver::validation::is_dns1123_subdomain(p))
    {
        return Err(SelectorError(format!(
            "unable to parse requirement: invalid label key \"{k}\": prefix part must be a DNS-1123 subdomain"
        )));
    }
    if !valid_name_part(name) {
        return Err(SelectorError(format!(
            "unable to parse requirement: invalid label key \"{k}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (max 63 characters)"
        )));
    }
    Ok(())
}

fn validate_value(v: &str) -> Result<(), SelectorError> {
    if v.is_empty() || valid_name_part(v) {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "unable to parse requirement: invalid label value: \"{v}\": must be 63 characters or less and must be empty or begin and end with an alphanumeric character, with '-', '_', '.', and alphanumerics between"
        )))
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Result<Vec<String>, SelectorError> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(SelectorError(format!(
                        "unable to parse requirement: unexpected ')' in {s:?}"
                    )));
                }
                cur.push(c);
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if depth != 0 {
        return Err(SelectorError(format!(
            "unable to parse requirement: unclosed '(' in {s:?}"
        )));
    }
    out.push(cur);
    Ok(out)
}

fn parse_set(rest: &str, whole: &str) -> Result<Vec<String>, SelectorError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            SelectorError(format!(
                "unable to parse requirement: expected a set in parentheses in {whole:?}"
            ))
        })?;
    let vals: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    for v in &vals {
        validate_value(v)?;
    }
    Ok(vals)
}

impl LabelSelector {
    /// Parses a label selector (`k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`,
    /// `k`, `!k`, comma-combined).
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector { reqs });
        }
        for term in split_top(s)? {
            let t = term.trim();
            if t.is_empty() {
                return Err(SelectorError(format!(
                    "unable to parse requirement: found '', expected: identifier in {s:?}"
                )));
            }
            if let Some(k) = t.strip_prefix('!') {
                let k = k.trim();
                validate_key(k)?;
                reqs.push((k.to_string(), Op::DoesNotExist));
                continue;
            }
            if let Some((k, v)) = t.split_once("!=") {
                let (k, v) = (k.trim(), v.trim());
                validate_key(k)?;
                validate_value(v)?;
                reqs.push((k.to_string(), Op::NotEq(v.to_string())));
                continue;
            }
            if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
                let (k, v) = (k.trim(), v.trim());
                validate_key(k)?;
                validate_value(v)?;
                reqs.push((k.to_string(), Op::Eq(v.to_string())));
                continue;
            }
            let mut words = t.splitn(2, char::is_whitespace);
            let k = words.next().unwrap_or("").trim();
            let rest = words.next().unwrap_or("").trim();
            validate_key(k)?;
            if rest.is_empty() {
                reqs.push((k.to_string(), Op::Exists));
            } else if let Some(r) = rest.strip_prefix("notin") {
                reqs.push((k.to_string(), Op::NotIn(parse_set(r, s)?)));
            } else if let Some(r) = rest.strip_prefix("in") {
                reqs.push((k.to_string(), Op::In(parse_set(r, s)?)));
            } else {
                return Err(SelectorError(format!(
                    "unable to parse requirement: unknown operator in {t:?}"
                )));
            }
        }
        Ok(LabelSelector { reqs })
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether `labels` (an object's `metadata.labels`) satisfy every requirement.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.reqs.iter().all(|(k, op)| {
            let v = labels.and_then(|l| l.get(k)).and_then(Value::as_str);
            match op {
                Op::Eq(want) => v == Some(want.as_str()),
                Op::NotEq(want) => v != Some(want.as_str()),
                Op::In(set) => v.is_some_and(|v| set.iter().any(|s| s == v)),
                Op::NotIn(set) => v.is_none_or(|v| !set.iter().any(|s| s == v)),
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
            }
        })
    }

    /// [`LabelSelector::matches`] on a whole object.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches(obj["metadata"]["labels"].as_object())
    }
}

/// Parsed `fieldSelector`: `f=v`, `f==v`, `f!=v` terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

fn unescape(v: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in v.chars() {
        if esc {
            out.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else {
            out.push(c);
        }
    }
    out
}

impl FieldSelector {
    /// Parses a field selector (values may escape `\,` `\=` `\\`).
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut terms = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector { terms });
        }
        // Split on unescaped commas.
        let mut parts = Vec::new();
        let mut cur = String::new();
        let mut esc = false;
        for c in s.chars() {
            if esc {
                cur.push('\\');
                cur.push(c);
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == ',' {
                parts.push(std::mem::take(&mut cur));
            } else {
                cur.push(c);
            }
        }
        parts.push(cur);
        for p in parts {
            let (f, eq, v) = if let Some((f, v)) = p.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = p.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = p.split_once('=') {
                (f, true, v)
            } else {
                return Err(SelectorError(format!(
                    "invalid selector: '{s}'; can't understand '{p}'"
                )));
            };
            let f = f.trim();
            if f.is_empty() {
                return Err(SelectorError(format!(
                    "invalid selector: '{s}'; can't understand '{p}'"
                )));
            }
            terms.push((f.to_string(), eq, unescape(v.trim())));
        }
        Ok(FieldSelector { terms })
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Checks every term's field is supported, with upstream's message otherwise.
    pub fn check_supported(&self, supported: &[&str]) -> Result<(), SelectorError> {
        for (f, _, _) in &self.terms {
            if !supported.contains(&f.as_str()) {
                return Err(SelectorError(format!("field label not supported: {f}")));
            }
        }
        Ok(())
    }

    /// Whether `obj` satisfies every term, with fields read by [`field_value`].
    pub fn matches(&self, obj: &Value) -> bool {
        self.matches_with(|f| field_value(obj, f))
    }

    /// Whether every term holds for the field values `value` gives (a kind's own
    /// reading of its selectable fields).
    pub fn matches_with(&self, value: impl Fn(&str) -> String) -> bool {
        self.terms.iter().all(|(f, eq, v)| (value(f) == *v) == *eq)
    }

    /// The value required for `field` by an `=` term, if any.
    pub fn exact_value(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|(f, eq, _)| f == field && *eq)
            .map(|(_, _, v)| v.as_str())
    }
}

/// The string value of a dotted field path as field selectors compare it.
pub fn field_value(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for part in path.split('.') {
        cur = &cur[part];
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "labels": labels}, "spec": {"nodeName": "n", "hostNetwork": true}, "status": {"phase": "Running"}})
    }

    #[test]
    fn label_operators() {
        let o = obj(json!({"tier": "front", "app": "web"}));
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches_object(&o);
        assert!(m("tier=front") && m("tier==front") && m("tier!=back") && m("app"));
        assert!(m("tier in (front, back)") && m("tier notin (back)") && m("!missing"));
        assert!(m("tier in (front,back),app=web"));
        assert!(!m("tier=back") && !m("missing") && !m("!tier") && !m("tier notin (front)"));
        assert!(m("missing!=x") && m("missing notin (x)"));
        assert!(LabelSelector::parse("").unwrap().is_empty());
    }

    #[test]
    fn label_errors() {
        for bad in ["k in (a", "=v", "k=v,", "Bad Key=1", "k=-v-", "k ~ v"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad} should fail");
        }
        assert!(LabelSelector::parse("example.com/app=x").is_ok());
        assert!(LabelSelector::parse(&format!("k={}", "a".repeat(64))).is_err());
    }

    #[test]
    fn field_selectors() {
        let o = obj(json!({}));
        let f = FieldSelector::parse("spec.nodeName=n,status.phase!=Pending,spec.hostNetwork=true")
            .unwrap();
        assert!(f.matches(&o));
        assert!(!FieldSelector::parse("metadata.name=q").unwrap().matches(&o));
        assert!(
            FieldSelector::parse("spec.nodeName=")
                .unwrap()
                .matches(&json!({"spec": {}}))
        );
        let err = FieldSelector::parse("spec.foo=bar")
            .unwrap()
            .check_supported(&["metadata.name", "spec.nodeName"])
            .unwrap_err();
        assert_eq!(err.to_string(), "field label not supported: spec.foo");
        assert_eq!(
            FieldSelector::parse(r"metadata.name=a\,b")
                .unwrap()
                .exact_value("metadata.name"),
            Some("a,b")
        );
        assert!(FieldSelector::parse("nonsense").is_err());
        let ev = json!({"source": {"component": "kubelet"}});
        assert!(
            FieldSelector::parse("source.component=kubelet")
                .unwrap()
                .matches(&ev)
        );
    }
}
