//! Server-side defaulting shared by every kind: uid, timestamps, generated names. Each
//! kind's own defaults are in its file under `kinds/`.

use rand::Rng;
use serde_json::{Map, Value, json};

/// The current time in the API's `YYYY-MM-DDTHH:MM:SSZ` form.
pub fn now_rfc3339() -> String {
    format_time(jiff::Timestamp::now())
}

/// Formats a timestamp as the API does (seconds precision, UTC).
pub fn format_time(t: jiff::Timestamp) -> String {
    jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", t).unwrap_or_default()
}

/// The alphabet upstream uses for `generateName` suffixes (no vowels, no confusable digits).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `prefix` plus five random characters, as upstream's SimpleNameGenerator does.
pub fn generate_name(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut s = String::from(prefix);
    if s.len() > 58 {
        s.truncate(58);
    }
    for _ in 0..5 {
        s.push(NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char);
    }
    s
}

/// The object at `key` of `v`, made an empty object first if it is not one.
pub fn obj_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !v.get(key).is_some_and(Value::is_object) {
        v[key] = Value::Object(Map::new());
    }
    v[key].as_object_mut().expect("just made an object")
}

/// Sets the server-owned metadata of a new object: uid, creationTimestamp, generation,
/// and clears what clients may not set on create.
pub fn init_metadata(obj: &mut Value) {
    let meta = obj_mut(obj, "metadata");
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    meta.insert("generation".into(), json!(1));
    for k in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "managedFields",
    ] {
        meta.remove(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_have_five_char_suffix() {
        let n = generate_name("web-");
        assert!(n.starts_with("web-") && n.len() == 9);
    }

    #[test]
    fn new_objects_get_server_metadata() {
        let mut obj = json!({"metadata": {"name": "x", "resourceVersion": "5"}});
        init_metadata(&mut obj);
        assert_eq!(obj["metadata"]["generation"], 1);
        assert_eq!(obj["metadata"]["uid"].as_str().unwrap().len(), 36);
        assert!(obj["metadata"].get("resourceVersion").is_none());
    }
}
