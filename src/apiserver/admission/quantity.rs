//! Resource quantities (`100m`, `1.5Gi`, `2`, `1e3`) with exact arithmetic and upstream's
//! canonical form (`1.5` prints `1500m`, `1.5Gi` prints `1536Mi`), and the resource lists
//! (`requests`, `status.used`) that quota and limit ranges add, compare and print — the
//! part of upstream's `resource.Quantity` and `quota/v1` helpers admission needs.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// Nano-units per unit: quantities are exact to 10^-9, as upstream's.
const NANO: i128 = 1_000_000_000;

/// How a quantity prints, remembered from the string it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `m`, `k`, `M`, ... (and no suffix).
    DecimalSi,
    /// `Ki`, `Mi`, `Gi`, ...
    BinarySi,
    /// `e3`, `E-6`.
    DecimalExponent,
}

/// Why a string is not a quantity (upstream's wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not of the quantity grammar.
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    Format,
    /// Too large to represent.
    #[error("unable to parse numeric part of quantity")]
    Numeric,
}

/// A resource quantity: an exact count of nano-units and the format it prints in.
/// Equality and order compare the value only (`1000m == 1`).
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

fn pow10(p: u32) -> Option<i128> {
    10i128.checked_pow(p)
}

impl Quantity {
    /// Zero, printed as `0`.
    pub const ZERO: Quantity = Quantity {
        nanos: 0,
        format: Format::DecimalSi,
    };

    /// The whole number `n` in `format`.
    pub fn from_int(n: i64, format: Format) -> Quantity {
        Quantity {
            nanos: i128::from(n) * NANO,
            format,
        }
    }

    /// Parses a quantity string.
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        let s = s.trim();
        let (negative, rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            Some(_) => (false, s),
            None => return Err(QuantityError::Format),
        };
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(end);
        if !number.bytes().any(|b| b.is_ascii_digit()) || number.matches('.').count() > 1 {
            return Err(QuantityError::Format);
        }
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        let mantissa: i128 = if digits.is_empty() {
            0
        } else if digits.len() > 36 {
            return Err(QuantityError::Numeric);
        } else {
            digits.parse().map_err(|_| QuantityError::Numeric)?
        };
        let (binary, decimal, format) = match suffix {
            "" => (0, 0, Format::DecimalSi),
            "n" => (0, -9, Format::DecimalSi),
            "u" => (0, -6, Format::DecimalSi),
            "m" => (0, -3, Format::DecimalSi),
            "k" => (0, 3, Format::DecimalSi),
            "M" => (0, 6, Format::DecimalSi),
            "G" => (0, 9, Format::DecimalSi),
            "T" => (0, 12, Format::DecimalSi),
            "P" => (0, 15, Format::DecimalSi),
            "E" => (0, 18, Format::DecimalSi),
            "Ki" => (10, 0, Format::BinarySi),
            "Mi" => (20, 0, Format::BinarySi),
            "Gi" => (30, 0, Format::BinarySi),
            "Ti" => (40, 0, Format::BinarySi),
            "Pi" => (50, 0, Format::BinarySi),
            "Ei" => (60, 0, Format::BinarySi),
            e if e.starts_with(['e', 'E']) => {
                let exp = &e[1..];
                let digits = exp.trim_start_matches(['+', '-']);
                if digits.is_empty()
                    || exp.len() - digits.len() > 1
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(QuantityError::Format);
                }
                let exp: i32 = exp.parse().map_err(|_| QuantityError::Numeric)?;
                (0, exp, Format::DecimalExponent)
            }
            _ => return Err(QuantityError::Format),
        };
        let mut nanos = mantissa
            .checked_mul(1i128 << binary)
            .ok_or(QuantityError::Numeric)?;
        let frac = i32::try_from(fraction.len()).map_err(|_| QuantityError::Numeric)?;
        let power = decimal.saturating_add(9).saturating_sub(frac);
        if power >= 0 {
            let m = pow10(power.unsigned_abs()).ok_or(QuantityError::Numeric)?;
            nanos = nanos.checked_mul(m).ok_or(QuantityError::Numeric)?;
        } else {
            // More precise than a nano-unit: rounded up, as upstream does.
            nanos = match pow10(power.unsigned_abs()) {
                Some(d) => (nanos + d - 1) / d,
                None => i128::from(nanos > 0),
            };
        }
        Ok(Quantity {
            nanos: if negative { -nanos } else { nanos },
            format,
        })
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// The value in thousandths, rounded up (upstream's `MilliValue`).
    pub fn milli_value(&self) -> i128 {
        self.nanos.div_euclid(1_000_000) + i128::from(self.nanos.rem_euclid(1_000_000) != 0)
    }

    /// The canonical string as a JSON value.
    pub fn to_json(&self) -> Value {
        Value::String(self.to_string())
    }
}

impl std::ops::Add for Quantity {
    type Output = Quantity;

    /// The sum; a zero left side takes the right side's format (upstream's `Add`).
    fn add(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_add(other.nanos),
            format: if self.nanos == 0 {
                other.format
            } else {
                self.format
            },
        }
    }
}

impl std::ops::Sub for Quantity {
    type Output = Quantity;

    /// The difference, formatted as the sum is.
    fn sub(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_sub(other.nanos),
            format: if self.nanos == 0 {
                other.format
            } else {
                self.format
            },
        }
    }
}

impl fmt::Display for Quantity {
    /// Upstream's canonical form: no fractional digits, the largest exponent or suffix
    /// that loses nothing, binary suffixes only for whole numbers from 1024 up.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let binary = self.format == Format::BinarySi
            && self.nanos.abs() >= 1024 * NANO
            && self.nanos % NANO == 0;
        if binary {
            let mut value = self.nanos / NANO;
            let mut exp = 0usize;
            while exp < 6 && value % 1024 == 0 {
                value /= 1024;
                exp += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp];
            return write!(f, "{value}{suffix}");
        }
        let mut value = self.nanos;
        let mut exp: i32 = -9;
        while value % 10 == 0 {
            value /= 10;
            exp += 1;
        }
        match exp.rem_euclid(3) {
            1 => {
                value *= 10;
                exp -= 1;
            }
            2 => {
                value *= 100;
                exp -= 2;
            }
            _ => {}
        }
        let suffix = match (self.format, exp) {
            (Format::DecimalExponent, 0) => String::new(),
            (Format::DecimalExponent, e) => format!("e{e}"),
            (_, -9) => "n".into(),
            (_, -6) => "u".into(),
            (_, -3) => "m".into(),
            (_, 0) => String::new(),
            (_, 3) => "k".into(),
            (_, 6) => "M".into(),
            (_, 9) => "G".into(),
            (_, 12) => "T".into(),
            (_, 15) => "P".into(),
            (_, 18) => "E".into(),
            (_, e) => format!("e{e}"),
        };
        write!(f, "{value}{suffix}")
    }
}

/// Quantities by resource name, in name order (as upstream prints them).
pub type ResourceList = BTreeMap<String, Quantity>;

/// A JSON quantity (string or number) as a quantity.
pub fn parse_value(v: &Value) -> Result<Quantity, QuantityError> {
    match v {
        Value::String(s) => Quantity::parse(s),
        Value::Number(n) => Quantity::parse(&n.to_string()),
        _ => Err(QuantityError::Format),
    }
}

/// The quantities of a JSON object (`requests`, `spec.hard`); entries that are not
/// quantities are left out (validation reports them).
pub fn list_of(v: &Value) -> ResourceList {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, q)| parse_value(q).ok().map(|q| (k.clone(), q)))
                .collect()
        })
        .unwrap_or_default()
}

/// A resource list as a JSON object of canonical strings.
pub fn list_to_json(list: &ResourceList) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, q)| (k.clone(), q.to_json()))
            .collect::<Map<_, _>>(),
    )
}

/// Rewrites every quantity of the JSON object `v` in canonical form (upstream stores
/// what it decoded, re-encoded); values that are not quantities stay for validation.
pub fn canonicalize(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        for q in m.values_mut() {
            if let Ok(parsed) = parse_value(q) {
                *q = parsed.to_json();
            }
        }
    }
}

/// `a + b`, key by key (keys of either side).
pub fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, q) in b {
        let sum = match out.get(k) {
            Some(have) => *have + *q,
            None => *q,
        };
        out.insert(k.clone(), sum);
    }
    out
}

/// `a - b` for the keys of `a`, never below zero.
pub fn subtract_non_negative(a: &ResourceList, b: &ResourceList) -> ResourceList {
    a.iter()
        .map(|(k, q)| {
            let d = match b.get(k) {
                Some(o) => *q - *o,
                None => *q,
            };
            let d = if d.is_negative() {
                Quantity { nanos: 0, ..d }
            } else {
                d
            };
            (k.clone(), d)
        })
        .collect()
}

/// The entries of `list` whose names are in `names`.
pub fn mask<S: AsRef<str>>(list: &ResourceList, names: &[S]) -> ResourceList {
    list.iter()
        .filter(|(k, _)| names.iter().any(|n| n.as_ref() == k.as_str()))
        .map(|(k, q)| (k.clone(), *q))
        .collect()
}

/// `list` without its zero entries.
pub fn remove_zeros(list: &ResourceList) -> ResourceList {
    list.iter()
        .filter(|(_, q)| !q.is_zero())
        .map(|(k, q)| (k.clone(), *q))
        .collect()
}

/// The names of the negative entries.
pub fn negative_names(list: &ResourceList) -> Vec<String> {
    list.iter()
        .filter(|(_, q)| q.is_negative())
        .map(|(k, _)| k.clone())
        .collect()
}

/// The names in `a` above their value in `b` (names `b` lacks are not compared).
pub fn exceeding(a: &ResourceList, b: &ResourceList) -> Vec<String> {
    a.iter()
        .filter(|(k, q)| b.get(*k).is_some_and(|limit| *q > limit))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Upstream's `prettyPrint`: `name=value` pairs in name order, joined by commas.
pub fn pretty(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, q)| format!("{k}={q}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The `resources.<which>` (`requests` or `limits`) of a container.
pub fn container_list(container: &Value, which: &str) -> ResourceList {
    list_of(&container["resources"][which])
}

fn max_into(into: &mut ResourceList, other: &ResourceList) {
    for (k, q) in other {
        match into.get(k) {
            Some(have) if have >= q => {}
            _ => {
                into.insert(k.clone(), *q);
            }
        }
    }
}

/// What a pod requests (`which` = `requests`) or is limited to (`limits`), as upstream's
/// `PodRequests`/`PodLimits`: the containers' sum, sidecars (init containers that restart
/// always) included, or the largest init container step if that is more; with
/// `overhead`, `spec.overhead` added (to the limits only where they are set).
pub fn pod_total(spec: &Value, which: &str, overhead: bool) -> ResourceList {
    let mut total = ResourceList::new();
    for c in spec["containers"].as_array().into_iter().flatten() {
        total = add(&total, &container_list(c, which));
    }
    let mut sidecars = ResourceList::new();
    let mut init_peak = ResourceList::new();
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        let own = container_list(c, which);
        let step = if c["restartPolicy"] == "Always" {
            total = add(&total, &own);
            sidecars = add(&sidecars, &own);
            sidecars.clone()
        } else {
            add(&own, &sidecars)
        };
        max_into(&mut init_peak, &step);
    }
    max_into(&mut total, &init_peak);
    if overhead {
        let extra = list_of(&spec["overhead"]);
        if which == "limits" {
            for (k, q) in extra {
                if let Some(have) = total.get(&k).copied() {
                    total.insert(k, have + q);
                }
            }
        } else {
            total = add(&total, &extra);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn canonical_forms_match_upstream() {
        for (input, want) in [
            ("1.5", "1500m"),
            ("1000m", "1"),
            ("2000", "2k"),
            ("1.5Gi", "1536Mi"),
            ("500Mi", "500Mi"),
            ("1024", "1024"),
            ("1Ki", "1Ki"),
            ("0.5Ki", "512"),
            ("1e3", "1e3"),
            ("100m", "100m"),
            ("0.1m", "100u"),
            ("0", "0"),
            ("-1", "-1"),
            ("+3", "3"),
            ("10G", "10G"),
            (".5", "500m"),
            ("1E", "1E"),
        ] {
            assert_eq!(q(input).to_string(), want, "{input}");
        }
        for bad in ["", "abc", "1.2.3", "1Xi", "e3", "1e", "1e+-3", "--1"] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_value(&json!(2)).unwrap().to_string(), "2");
    }

    #[test]
    fn arithmetic_keeps_upstream_formats() {
        let zero = Quantity::ZERO;
        assert_eq!((zero + q("64Mi") + q("64Mi")).to_string(), "128Mi");
        assert_eq!((q("100m") + q("200m")).to_string(), "300m");
        assert_eq!((q("1") + q("500m")).to_string(), "1500m");
        assert_eq!(q("1"), q("1000m"));
        assert!(q("1Gi") > q("1G"));
        assert_eq!(q("1m").milli_value(), 1);
        assert_eq!(q("1n").milli_value(), 1);
        let a: ResourceList = [("pods".to_string(), q("1")), ("cpu".into(), q("1"))].into();
        let b: ResourceList = [("pods".to_string(), q("3"))].into();
        assert_eq!(pretty(&subtract_non_negative(&a, &b)), "cpu=1,pods=0");
        assert_eq!(exceeding(&add(&a, &b), &b), vec!["pods".to_string()]);
        assert_eq!(pretty(&mask(&a, &["pods"])), "pods=1");
    }

    #[test]
    fn pod_totals_count_sidecars_and_init_peaks() {
        let spec = json!({
            "containers": [
                {"resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}}},
                {"resources": {"requests": {"cpu": "200m", "memory": "64Mi"}}}
            ],
            "initContainers": [
                {"resources": {"requests": {"cpu": "500m"}}},
                {"restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}}
            ],
            "overhead": {"cpu": "10m"}
        });
        let req = pod_total(&spec, "requests", false);
        assert_eq!(pretty(&req), "cpu=500m,memory=64Mi");
        let with = pod_total(&spec, "requests", true);
        assert_eq!(with["cpu"].to_string(), "510m");
        let lim = pod_total(&spec, "limits", true);
        assert_eq!(pretty(&lim), "cpu=1010m");
    }
}
