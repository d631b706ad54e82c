//! Server-side Table printing: the pieces every kind's printer shares (column
//! definitions, upstream's human durations, AGE). Each kind's columns and cells are in its
//! file under `kinds/`.

use serde::Serialize;
use serde_json::{Value, json};

/// One column definition of a Table.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Column {
    /// Header (kubectl upper-cases it).
    pub name: &'static str,
    /// `string`, `integer`, `date`, ...
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `name` on the name column.
    pub format: &'static str,
    /// Short description.
    pub description: &'static str,
    /// 0 always shown, 1 only with `-o wide`.
    pub priority: i32,
}

/// A column of priority `priority` (1: only with `-o wide`).
pub const fn col(
    name: &'static str,
    kind: &'static str,
    priority: i32,
    description: &'static str,
) -> Column {
    Column {
        name,
        kind,
        format: "",
        description,
        priority,
    }
}

/// The NAME column.
pub const fn name_col() -> Column {
    Column {
        name: "Name",
        kind: "string",
        format: "name",
        description: "Name must be unique within a namespace.",
        priority: 0,
    }
}

/// The AGE column.
pub const fn age_col() -> Column {
    col(
        "Age",
        "string",
        0,
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    )
}

/// The columns of a kind without its own printer (upstream's default table).
pub fn default_columns() -> Vec<Column> {
    vec![
        name_col(),
        Column {
            name: "Created At",
            kind: "date",
            format: "",
            description: "Creation time.",
            priority: 0,
        },
    ]
}

/// The cells of [`default_columns`].
pub fn default_cells(obj: &Value) -> Vec<Value> {
    vec![
        json!(s(&obj["metadata"]["name"])),
        json!(obj["metadata"]["creationTimestamp"].as_str().unwrap_or("")),
    ]
}

/// The NAME and AGE cells of `obj`, the first and usually last of a row.
pub fn name_and_age(obj: &Value, now: jiff::Timestamp) -> (Value, Value) {
    (
        json!(s(&obj["metadata"]["name"])),
        json!(age(obj["metadata"]["creationTimestamp"].as_str(), now)),
    )
}

/// Upstream's human duration (`95s`, `3m20s`, `42m`, `5h10m`, `30h`, `3d4h`, `12d`, `2y3d`).
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    if s < 120 {
        return format!("{s}s");
    }
    let m = s / 60;
    if m < 10 {
        let rem = s % 60;
        return if rem == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{rem}s")
        };
    }
    if m < 180 {
        return format!("{m}m");
    }
    let h = s / 3600;
    if h < 8 {
        let rem = (s % 3600) / 60;
        return if rem == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{rem}m")
        };
    }
    if h < 48 {
        return format!("{h}h");
    }
    if h < 24 * 8 {
        let d = h / 24;
        let rem = h % 24;
        return if rem == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{rem}h")
        };
    }
    if h < 24 * 365 * 2 {
        return format!("{}d", h / 24);
    }
    let y = h / (24 * 365);
    let d = (h / 24) % 365;
    if d == 0 {
        format!("{y}y")
    } else {
        format!("{y}y{d}d")
    }
}

/// The age cell for an RFC 3339 timestamp.
pub fn age(timestamp: Option<&str>, now: jiff::Timestamp) -> String {
    match timestamp.and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        Some(t) => human_duration((now - t).get_seconds()),
        None => "<unknown>".into(),
    }
}

/// A JSON string value, or "" for anything else.
pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// `<none>` for an empty cell.
pub fn none_if_empty(v: &str) -> String {
    if v.is_empty() {
        "<none>".into()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_duration(95), "95s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(42 * 60), "42m");
        assert_eq!(human_duration(5 * 3600 + 600), "5h10m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(human_duration(12 * 86400), "12d");
        assert_eq!(human_duration(2 * 365 * 86400 + 3 * 86400), "2y3d");
    }
}
