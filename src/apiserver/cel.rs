//! CEL as the API server evaluates it, for ValidatingAdmissionPolicies, webhook
//! `matchConditions` and the `x-kubernetes-validations` of custom resources. The language
//! is the `cel` crate's (cel-rust) with its strings, lists and math extensions and
//! optional field selection (`self.?x`), which cover most of upstream's Kubernetes
//! libraries; JSON becomes CEL values the way upstream's unstructured conversion does
//! (every JSON integer is an `int`). Programs are compiled once per source text.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use ::cel::objects::{Key, Map};
use ::cel::{Context, Env, Program, Value as CelValue};
use serde_json::Value;

/// Why an expression could not be compiled or evaluated.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CelError {
    /// A syntax error (upstream's wording: `compilation failed: ERROR: <input>:1:5: ...`).
    #[error("compilation failed: {0}")]
    Compile(String),
    /// The expression failed while it ran (a missing key, no such overload, ...).
    #[error("{0}")]
    Eval(String),
    /// The expression ran but gave a value of the wrong type.
    #[error("expression returned {got} instead of {want}")]
    Type {
        /// The type it gave.
        got: String,
        /// The type wanted.
        want: &'static str,
    },
}

/// The environment every expression is compiled and run in.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    for ext in [
        ::cel::extensions::strings as fn(&mut Env) -> _,
        ::cel::extensions::lists,
        ::cel::extensions::math,
    ] {
        if let Err(e) = env.add_extension(ext) {
            tracing::error!(error = %e, "a CEL extension could not be added");
        }
    }
    Arc::new(env.with_optional_support(true))
});

/// Compiled programs by source (policies and schemas are few; their expressions are
/// evaluated on every matching write).
static PROGRAMS: LazyLock<Mutex<HashMap<String, Arc<Program>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Compiles `source` (cached).
pub fn compile(source: &str) -> Result<Arc<Program>, CelError> {
    if let Some(p) = PROGRAMS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(source)
    {
        return Ok(p.clone());
    }
    let program = Arc::new(
        ENV.compile(source)
            .map_err(|e| CelError::Compile(e.to_string().trim().to_string()))?,
    );
    let mut cache = PROGRAMS.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() > 4096 {
        cache.clear();
    }
    cache.insert(source.to_string(), program.clone());
    Ok(program)
}

/// Whether `program` refers to the variable `name` (a CRD rule that reads `oldSelf` is a
/// transition rule, evaluated only on updates).
pub fn references(program: &Program, name: &str) -> bool {
    program.references().has_variable(name)
}

/// A JSON value as CEL sees it: integers as `int` (`uint` only above `i64::MAX`), other
/// numbers as `double`, objects as maps with string keys.
pub fn to_cel(v: &Value) -> CelValue {
    match v {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => CelValue::Int(i),
            (None, Some(u)) => CelValue::UInt(u),
            _ => CelValue::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => CelValue::String(Arc::new(s.clone())),
        Value::Array(items) => CelValue::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(fields) => {
            let map: HashMap<Key, CelValue> = fields
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            CelValue::Map(Map { map: Arc::new(map) })
        }
    }
}

/// Runs `program` with `vars` bound.
pub fn eval(program: &Program, vars: &[(&str, CelValue)]) -> Result<CelValue, CelError> {
    let mut ctx = Context::with_env(ENV.clone());
    for (name, value) in vars {
        ctx.add_variable_from_value(*name, value.clone());
    }
    program
        .execute(&ctx)
        .map_err(|e| CelError::Eval(e.to_string()))
}

/// Runs `program`, which must give a `bool`.
pub fn eval_bool(program: &Program, vars: &[(&str, CelValue)]) -> Result<bool, CelError> {
    match eval(program, vars)? {
        CelValue::Bool(b) => Ok(b),
        other => Err(CelError::Type {
            got: type_name(&other),
            want: "bool",
        }),
    }
}

/// Runs `program`, which must give a `string` (a `messageExpression`).
pub fn eval_string(program: &Program, vars: &[(&str, CelValue)]) -> Result<String, CelError> {
    match eval(program, vars)? {
        CelValue::String(s) => Ok(s.as_ref().clone()),
        other => Err(CelError::Type {
            got: type_name(&other),
            want: "string",
        }),
    }
}

/// A map value with string keys (`request`, `variables`).
pub fn map(entries: Vec<(&str, CelValue)>) -> CelValue {
    let map: HashMap<Key, CelValue> = entries
        .into_iter()
        .map(|(k, v)| (Key::String(Arc::new(k.to_string())), v))
        .collect();
    CelValue::Map(Map { map: Arc::new(map) })
}

fn type_name(v: &CelValue) -> String {
    v.type_of().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(src: &str, obj: Value) -> Result<bool, CelError> {
        let p = compile(src)?;
        eval_bool(&p, &[("object", to_cel(&obj)), ("self", to_cel(&obj))])
    }

    #[test]
    fn expressions_see_json_as_upstream_does() {
        let o = json!({"spec": {"replicas": 3, "ratio": 0.5, "image": "nginx:1.2",
                                "ports": [80, 443]}, "metadata": {"name": "web"}});
        assert!(check("object.spec.replicas <= 5", o.clone()).unwrap());
        assert!(!check("object.spec.replicas > 5", o.clone()).unwrap());
        assert!(check("self.spec.ratio < 1.0", o.clone()).unwrap());
        assert!(check("has(object.spec.image) && !has(object.spec.x)", o.clone()).unwrap());
        assert!(check("object.spec.ports.all(p, p > 0)", o.clone()).unwrap());
        assert!(check("object.metadata.name.startsWith('w')", o.clone()).unwrap());
        assert!(check("self.spec.?missing.orValue(1) == 1", o.clone()).unwrap());
        assert!(check("object.spec.image.matches('^nginx:')", o.clone()).unwrap());
        assert!(check("object.metadata.name.upperAscii() == 'WEB'", o.clone()).unwrap());
    }

    #[test]
    fn errors_say_what_failed() {
        let o = json!({"spec": {}});
        let e = check("object.spec.replicas > 1", o.clone()).unwrap_err();
        assert!(e.to_string().contains("replicas"), "{e}");
        let e = check("object.spec ((", o.clone()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("compilation failed: ERROR: <input>:1:"),
            "{e}"
        );
        let e = check("'a'", o).unwrap_err();
        assert_eq!(e.to_string(), "expression returned string instead of bool");
    }

    #[test]
    fn transition_rules_are_recognised() {
        assert!(references(&compile("self >= oldSelf").unwrap(), "oldSelf"));
        assert!(!references(&compile("self >= 1").unwrap(), "oldSelf"));
    }
}
