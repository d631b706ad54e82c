//! Message tables built from the descriptor set of upstream's `generated.proto` files
//! (compiled by `build.rs`), plus the hand-kept facts of `facts.txt`, and the mapping from
//! `(apiVersion, kind)` to a message.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};

use super::facts::{self, Facts};

/// The descriptor set `build.rs` compiled from `proto/k8s/`.
const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/k8s.pb"));

/// `meta.k8s.io/v1`'s package, home of the kinds every group serves.
pub const META_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

/// Kinds every API group version registers from `meta/v1` (`metav1.AddToGroupVersion`
/// and friends), found there whatever group the envelope names.
const META_KINDS: &[&str] = &[
    "Status",
    "DeleteOptions",
    "ListOptions",
    "GetOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
    "WatchEvent",
    "APIResourceList",
    "APIGroup",
    "APIGroupList",
    "APIVersions",
    "PartialObjectMetadata",
    "PartialObjectMetadataList",
];

/// A field's value type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Str,
    Bytes,
    Bool,
    I32,
    I64,
    U32,
    U64,
    F32,
    F64,
    /// A message, by index into [`Schema::messages`].
    Msg(u32),
}

/// A field's cardinality.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Card {
    One,
    Repeated,
    /// `map<K, V>`: repeated entries `{1 key, 2 value}`; the field's type is `V`.
    Map(Ty),
}

/// Messages whose JSON form is not an object of their fields (Go custom marshalers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    None,
    /// `metav1.Time`: RFC 3339, whole seconds.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with microseconds.
    MicroTime,
    /// `metav1.Duration`: a Go duration string.
    Duration,
    /// `resource.Quantity`: its string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string.
    IntOrString,
    /// `runtime.RawExtension`, apiextensions `JSON`: field 1 holds JSON bytes.
    RawJson,
    /// `metav1.FieldsV1`: field 1 holds a JSON object.
    FieldsV1,
    /// A named Go slice (`metav1.Verbs`, `ExtraValue`): a JSON array of field 1.
    Array,
}

/// One field of a message.
#[derive(Clone, Debug)]
pub struct Field {
    pub number: u32,
    pub json: String,
    pub ty: Ty,
    pub card: Card,
    /// Print the zero value (Go pointer or no `omitempty`).
    pub keep: bool,
    /// `json:",inline"`: the nested object's members are the parent's.
    pub inline: bool,
    /// `json:"-"`: never in JSON.
    pub skip: bool,
}

/// FNV-1a, for the lookup of every member of every encoded object by its JSON name:
/// the names are short and fixed, and SipHash's setup cost dominated those lookups.
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by JSON names, hashed with [`Fnv`].
type ByJson = HashMap<String, u16, BuildHasherDefault<Fnv>>;

/// One message: fields in declaration (Go struct) order, plus lookups.
#[derive(Debug)]
pub struct Message {
    /// Full name, `k8s.io.api.core.v1.Pod`.
    pub name: String,
    pub fields: Vec<Field>,
    pub special: Special,
    /// Whether a field is inline (encoding then walks the fields, not the JSON keys).
    pub has_inline: bool,
    /// Field index by field number (`NONE` where no field).
    by_number: Vec<u16>,
    /// Field index by JSON name.
    by_json: ByJson,
}

const NONE: u16 = u16::MAX;

impl Message {
    /// The field with this number.
    pub fn field_by_number(&self, number: u32) -> Option<(usize, &Field)> {
        let i = *self.by_number.get(usize::try_from(number).ok()?)?;
        (i != NONE).then(|| (usize::from(i), &self.fields[usize::from(i)]))
    }

    /// The field with this JSON name.
    pub fn field_by_json(&self, json: &str) -> Option<&Field> {
        self.by_json
            .get(json)
            .map(|i| &self.fields[usize::from(*i)])
    }
}

/// All messages of the descriptor set.
#[derive(Debug)]
pub struct Schema {
    pub messages: Vec<Message>,
    by_name: HashMap<String, u32>,
}

impl Schema {
    /// The schema of the embedded descriptor set and facts file.
    pub fn embedded() -> Schema {
        let set = FileDescriptorSet::decode(DESCRIPTOR_SET)
            .expect("build.rs writes a valid descriptor set");
        Schema::build(&set, &facts::parse(facts::FACTS_TXT))
    }

    fn build(set: &FileDescriptorSet, facts: &Facts) -> Schema {
        // First every message name, so fields can refer to messages by index.
        let mut protos: Vec<(String, &DescriptorProto)> = Vec::new();
        fn collect<'a>(
            prefix: &str,
            m: &'a DescriptorProto,
            out: &mut Vec<(String, &'a DescriptorProto)>,
        ) {
            let name = format!("{prefix}.{}", m.name());
            for nested in &m.nested_type {
                collect(&name, nested, out);
            }
            out.push((name, m));
        }
        for file in &set.file {
            for m in &file.message_type {
                collect(file.package(), m, &mut protos);
            }
        }
        let by_name: HashMap<String, u32> = protos
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), i as u32))
            .collect();
        let map_entries: HashMap<u32, (Ty, Ty)> = protos
            .iter()
            .enumerate()
            .filter(|(_, (_, m))| m.options.as_ref().is_some_and(|o| o.map_entry()))
            .map(|(i, (_, m))| {
                let ty = |n: i32| {
                    m.field
                        .iter()
                        .find(|f| f.number() == n)
                        .map_or(Ty::Str, |f| field_type(f, &by_name))
                };
                (i as u32, (ty(1), ty(2)))
            })
            .collect();

        let messages = protos
            .iter()
            .map(|(name, m)| {
                let message_facts = facts.get(name);
                let fields: Vec<Field> = m
                    .field
                    .iter()
                    .map(|f| {
                        let number = u32::try_from(f.number()).unwrap_or(0);
                        let fact = message_facts
                            .and_then(|mf| mf.get(&number))
                            .cloned()
                            .unwrap_or_default();
                        let mut ty = field_type(f, &by_name);
                        let card = match (f.label(), ty) {
                            (Label::Repeated, Ty::Msg(i)) if map_entries.contains_key(&i) => {
                                let (key, value) = map_entries[&i];
                                ty = value;
                                Card::Map(key)
                            }
                            (Label::Repeated, _) => Card::Repeated,
                            _ => Card::One,
                        };
                        Field {
                            number,
                            json: fact.json.unwrap_or_else(|| f.name().to_string()),
                            ty,
                            card,
                            keep: fact.keep,
                            inline: fact.inline,
                            skip: fact.skip,
                        }
                    })
                    .collect();
                let max = fields.iter().map(|f| f.number).max().unwrap_or(0) as usize;
                let mut by_number = vec![NONE; max + 1];
                for (i, f) in fields.iter().enumerate() {
                    by_number[f.number as usize] = i as u16;
                }
                let by_json = fields
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| !f.inline && !f.skip)
                    .map(|(i, f)| (f.json.clone(), i as u16))
                    .collect();
                Message {
                    special: special(name, &fields),
                    has_inline: fields.iter().any(|f| f.inline),
                    name: name.clone(),
                    fields,
                    by_number,
                    by_json,
                }
            })
            .collect();
        Schema { messages, by_name }
    }

    /// The message with this full name.
    pub fn message(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    /// The message of `kind` in `apiVersion` (`v1`, `apps/v1`, `events.k8s.io/v1`): the
    /// group's package, or `meta/v1` for the kinds every group serves.
    pub fn kind_message(&self, api_version: &str, kind: &str) -> Option<u32> {
        if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        if version.is_empty() || !version.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        if let Some(package) = group_package(group)
            && let Some(i) = self.message(&format!("{package}.{version}.{kind}"))
        {
            return Some(i);
        }
        if META_KINDS.contains(&kind) {
            return self.message(&format!("{META_V1}.{kind}"));
        }
        None
    }
}

/// The proto package prefix (without version) of an API group's types.
fn group_package(group: &str) -> Option<String> {
    Some(match group {
        "" => "k8s.io.api.core".to_string(),
        "meta.k8s.io" => "k8s.io.apimachinery.pkg.apis.meta".to_string(),
        "apiextensions.k8s.io" => {
            "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions".to_string()
        }
        "internal.apiserver.k8s.io" => "k8s.io.api.apiserverinternal".to_string(),
        g if !g.contains('.') => format!("k8s.io.api.{g}"),
        g if g.ends_with(".k8s.io") => {
            let first = g.split('.').next().unwrap_or(g);
            format!("k8s.io.api.{first}")
        }
        _ => return None,
    })
}

fn field_type(f: &prost_types::FieldDescriptorProto, by_name: &HashMap<String, u32>) -> Ty {
    match f.r#type() {
        Type::String => Ty::Str,
        Type::Bytes => Ty::Bytes,
        Type::Bool => Ty::Bool,
        Type::Int32 | Type::Sint32 | Type::Sfixed32 | Type::Enum => Ty::I32,
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => Ty::I64,
        Type::Uint32 | Type::Fixed32 => Ty::U32,
        Type::Uint64 | Type::Fixed64 => Ty::U64,
        Type::Float => Ty::F32,
        Type::Double => Ty::F64,
        Type::Message | Type::Group => by_name
            .get(f.type_name().trim_start_matches('.'))
            .map_or(Ty::Bytes, |i| Ty::Msg(*i)),
    }
}

fn special(name: &str, fields: &[Field]) -> Special {
    match name {
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time" => Special::Time,
        "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => Special::MicroTime,
        "k8s.io.apimachinery.pkg.apis.meta.v1.Duration" => Special::Duration,
        "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1" => Special::FieldsV1,
        "k8s.io.apimachinery.pkg.api.resource.Quantity"
        | "k8s.io.apimachinery.pkg.api.resource.QuantityValue" => Special::Quantity,
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => Special::IntOrString,
        "k8s.io.apimachinery.pkg.runtime.RawExtension"
        | "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON" => Special::RawJson,
        // Named Go slices of strings (`Verbs`, `ExtraValue`) are wrapped as one
        // repeated `items` field; a struct with only an `items` list of messages
        // (`DownwardAPIProjection`) is an object in JSON.
        _ if !name.ends_with("List")
            && fields.len() == 1
            && fields[0].json == "items"
            && fields[0].card == Card::Repeated
            && !matches!(fields[0].ty, Ty::Msg(_)) =>
        {
            Special::Array
        }
        _ => Special::None,
    }
}
