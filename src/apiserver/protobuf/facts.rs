//! The JSON facts protobuf does not carry, kept as data in `facts.txt` (derived from
//! upstream's Go types by `scripts/k8s-proto-facts.py`): which zero values Go prints
//! (pointer or no `omitempty`), which fields are `json:",inline"`, which are not in JSON,
//! and which JSON names differ from the proto field names.

use std::collections::HashMap;

/// What `facts.txt` says about one field.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    /// Print the zero value (Go pointer or no `omitempty`).
    pub keep: bool,
    /// `json:",inline"`.
    pub inline: bool,
    /// `json:"-"`.
    pub skip: bool,
    /// JSON name, when it is not the proto field name.
    pub json: Option<String>,
}

/// Facts by full message name (`k8s.io.api.core.v1.PodSpec`) and field number.
pub type Facts = HashMap<String, HashMap<u32, Fact>>;

/// The facts file, as committed.
pub const FACTS_TXT: &str = include_str!("facts.txt");

/// Parses the facts file: `@package` lines, then `Message 3k 4i 5x 6k=jsonName ...`.
pub fn parse(text: &str) -> Facts {
    let mut facts = Facts::new();
    let mut package = "";
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(p) = line.strip_prefix('@') {
            package = p;
            continue;
        }
        let mut words = line.split_whitespace();
        let Some(message) = words.next() else {
            continue;
        };
        let fields = facts.entry(format!("{package}.{message}")).or_default();
        for word in words {
            let digits = word.bytes().take_while(u8::is_ascii_digit).count();
            let Ok(num) = word[..digits].parse::<u32>() else {
                continue;
            };
            let (flags, json) = match word[digits..].split_once('=') {
                Some((flags, json)) => (flags, Some(json.to_string())),
                None => (&word[digits..], None),
            };
            let fact = fields.entry(num).or_default();
            fact.keep |= flags.contains('k');
            fact.inline |= flags.contains('i');
            fact.skip |= flags.contains('x');
            if json.is_some() {
                fact.json = json;
            }
        }
    }
    facts
}
