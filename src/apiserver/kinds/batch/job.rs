//! Jobs (+`status`): upstream's v1 defaults (`SetDefaults_Job`), the generated selector
//! (`batch.kubernetes.io/controller-uid` and `job-name` labels, and the legacy
//! unprefixed ones) unless `manualSelector`, `ValidateJob*` with upstream's messages
//! (restartPolicy OnFailure|Never, the immutable fields), the NAME STATUS COMPLETIONS
//! DURATION AGE columns (wide: CONTAINERS IMAGES SELECTOR), and batch/v1's orphaning
//! default for deletes that name no propagation policy.

use serde_json::{Map, Value, json};

use crate::apiserver::deletion::GcPolicy;
use crate::apiserver::kinds::core::replicationcontroller::go_map;
use crate::apiserver::kinds::core::{pod, podspec};
use crate::apiserver::kinds::{GET_PATCH_UPDATE, ListMerge, ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, human_duration, name_col, s};
use crate::apiserver::validation::{
    Cause, forbidden, invalid, invalid_num, not_supported, required,
};

/// The label (and selector key) with the Job's uid.
pub const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
/// The label with the Job's name.
pub const JOB_NAME: &str = "batch.kubernetes.io/job-name";
/// The unprefixed uid label older clients select on.
pub const LEGACY_CONTROLLER_UID: &str = "controller-uid";
/// The unprefixed name label.
pub const LEGACY_JOB_NAME: &str = "job-name";
/// The annotation and label with an Indexed Job pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The finalizer the Job controller keeps on its pods until it has counted them.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Most completions (and parallelism) of an Indexed Job.
const MAX_INDEXED_COMPLETIONS: i64 = 100_000;
const NEGATIVE: &str = "must be greater than or equal to 0";
const IMMUTABLE: &str = "field is immutable";

/// The `Job` strategy.
pub struct Jobs {
    def: ResourceDef,
}

impl Jobs {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        Jobs {
            def: ResourceDef::new("batch", "v1", "Job", "jobs")
                .categories(&["all"])
                .subresource("status", "Job", GET_PATCH_UPDATE),
        }
    }
}

impl Default for Jobs {
    fn default() -> Self {
        Self::new()
    }
}

/// Upstream's `SetDefaults_Job` on `spec` (a Job's, or a CronJob's job template's).
pub fn set_spec_defaults(spec: &mut Value) {
    if !spec.is_object() {
        *spec = json!({});
    }
    if spec["completions"].is_null() && spec["parallelism"].is_null() {
        spec["completions"] = json!(1);
    }
    if spec["parallelism"].is_null() {
        spec["parallelism"] = json!(1);
    }
    if spec["backoffLimit"].is_null() {
        spec["backoffLimit"] = if spec["backoffLimitPerIndex"].is_null() {
            json!(6)
        } else {
            json!(i32::MAX)
        };
    }
    if spec["completionMode"].is_null() {
        spec["completionMode"] = json!("NonIndexed");
    }
    if spec["suspend"].is_null() {
        spec["suspend"] = json!(false);
    }
    // `get_mut`, not indexing: a mutable index would insert the absent keys.
    let rules = spec
        .get_mut("podFailurePolicy")
        .and_then(|p| p.get_mut("rules"))
        .and_then(Value::as_array_mut);
    for rule in rules.into_iter().flatten() {
        let conds = rule
            .get_mut("onPodConditions")
            .and_then(Value::as_array_mut);
        for p in conds.into_iter().flatten() {
            if p["status"].is_null() {
                p["status"] = json!("True");
            }
        }
    }
    if spec["podReplacementPolicy"].is_null() {
        spec["podReplacementPolicy"] = if spec["podFailurePolicy"].is_null() {
            json!("TerminatingOrFailed")
        } else {
            json!("Failed")
        };
    }
    podspec::set_template_defaults(&mut spec["template"]);
}

fn manual(obj: &Value) -> bool {
    obj["spec"]["manualSelector"].as_bool() == Some(true)
}

/// Upstream's `generateSelector`: the template gets the name and uid labels (unless set),
/// and the selector matches the uid.
fn generate_selector(obj: &mut Value) {
    let name = obj["metadata"]["name"].clone();
    let uid = obj["metadata"]["uid"].clone();
    let labels = &mut obj["spec"]["template"]["metadata"]["labels"];
    if !labels.is_object() {
        *labels = json!({});
    }
    let labels = labels.as_object_mut().expect("just made an object");
    for (k, v) in [
        (LEGACY_JOB_NAME, &name),
        (JOB_NAME, &name),
        (LEGACY_CONTROLLER_UID, &uid),
        (CONTROLLER_UID, &uid),
    ] {
        labels.entry(k).or_insert_with(|| v.clone());
    }
    let sel = &mut obj["spec"]["selector"];
    if !sel.is_object() {
        *sel = json!({});
    }
    if !sel["matchLabels"].is_object() {
        sel["matchLabels"] = json!({});
    }
    if sel["matchLabels"].get(CONTROLLER_UID).is_none() {
        sel["matchLabels"][CONTROLLER_UID] = uid;
    }
}

/// Whether the `metav1.LabelSelector` `sel` matches the label map `labels`.
pub fn selector_matches(sel: &Value, labels: &Value) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    let ml_ok = sel["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| get(k) == v.as_str());
    let me_ok = sel["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e["key"].as_str().unwrap_or("");
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match e["operator"].as_str().unwrap_or("") {
                "In" => get(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
                "Exists" => get(key).is_some(),
                "DoesNotExist" => get(key).is_none(),
                _ => false,
            }
        });
    ml_ok && me_ok
}

/// `metav1.FormatLabelSelector`: `k=v,k in (a,b)`, `<none>` when empty.
pub fn format_selector(sel: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (k, v) in sel["matchLabels"].as_object().into_iter().flatten() {
        parts.push(format!("{k}={}", s(v)));
    }
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = s(&e["key"]);
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match s(&e["operator"]) {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            op => format!("{key} {op}"),
        });
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

fn nonnegative(v: &Value, field: &str, out: &mut Vec<Cause>) {
    if let Some(n) = v.as_i64()
        && n < 0
    {
        out.push(invalid_num(field, n, NEGATIVE));
    }
}

/// Upstream's `ValidateHasLabel` at `<root>.labels[<key>]`.
fn has_label(labels: &Value, root: &str, key: &str, want: &str, out: &mut Vec<Cause>) {
    let field = format!("{root}.labels[{key}]");
    let why = format!("must be '{want}'");
    match labels.get(key).and_then(Value::as_str) {
        None => out.push(Cause {
            reason: "FieldValueRequired".into(),
            message: format!("Required value: {why}"),
            field,
        }),
        Some(v) if v != want => out.push(invalid(field, v, &why)),
        Some(_) => {}
    }
}

/// `validateGeneratedSelector`: the template carries the generated labels and the
/// selector is the generated one.
fn validate_generated_selector(obj: &Value, out: &mut Vec<Cause>) {
    if manual(obj) {
        return;
    }
    let labels = &obj["spec"]["template"]["metadata"]["labels"];
    if !labels.is_object() {
        return;
    }
    let uid = s(&obj["metadata"]["uid"]);
    let name = s(&obj["metadata"]["name"]);
    let root = "spec.template.metadata";
    has_label(labels, root, LEGACY_CONTROLLER_UID, uid, out);
    has_label(labels, root, LEGACY_JOB_NAME, name, out);
    has_label(labels, root, CONTROLLER_UID, uid, out);
    has_label(labels, root, JOB_NAME, name, out);
    let sel = &obj["spec"]["selector"];
    if sel.is_object() && !selector_matches(sel, &json!({CONTROLLER_UID: uid, JOB_NAME: name})) {
        out.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!(
                "Invalid value: {}: `selector` not auto-generated",
                serde_json::to_string(sel).unwrap_or_default()
            ),
            field: "spec.selector".into(),
        });
    }
}

/// The rules of a Job spec at `root` shared by Jobs and job templates (upstream's
/// `validateJobSpec`), without the selector.
pub fn validate_spec_common(spec: &Value, root: &str, out: &mut Vec<Cause>) {
    let f = |k: &str| format!("{root}.{k}");
    nonnegative(&spec["parallelism"], &f("parallelism"), out);
    nonnegative(&spec["completions"], &f("completions"), out);
    nonnegative(
        &spec["activeDeadlineSeconds"],
        &f("activeDeadlineSeconds"),
        out,
    );
    nonnegative(&spec["backoffLimit"], &f("backoffLimit"), out);
    nonnegative(
        &spec["ttlSecondsAfterFinished"],
        &f("ttlSecondsAfterFinished"),
        out,
    );
    nonnegative(
        &spec["backoffLimitPerIndex"],
        &f("backoffLimitPerIndex"),
        out,
    );
    nonnegative(&spec["maxFailedIndexes"], &f("maxFailedIndexes"), out);
    let mode = spec["completionMode"].as_str().unwrap_or("NonIndexed");
    let indexed = mode == "Indexed";
    if !matches!(mode, "NonIndexed" | "Indexed") {
        out.push(not_supported(
            f("completionMode"),
            mode,
            &["NonIndexed", "Indexed"],
        ));
    }
    if indexed {
        match spec["completions"].as_i64() {
            None => out.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: when completion mode is Indexed".into(),
                field: f("completions"),
            }),
            Some(n) if n > MAX_INDEXED_COMPLETIONS => out.push(invalid_num(
                f("completions"),
                n,
                "must be less than or equal to 100000 when completion mode is Indexed",
            )),
            _ => {}
        }
        if let Some(p) = spec["parallelism"].as_i64()
            && p > MAX_INDEXED_COMPLETIONS
        {
            out.push(invalid_num(
                f("parallelism"),
                p,
                "must be less than or equal to 100000 when completion mode is Indexed",
            ));
        }
    }
    if !spec["backoffLimitPerIndex"].is_null() && !indexed {
        out.push(forbidden(
            f("backoffLimitPerIndex"),
            "requires indexed completion mode",
        ));
    }
    if let Some(m) = spec["maxFailedIndexes"].as_i64() {
        if spec["backoffLimitPerIndex"].is_null() {
            out.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: when maxFailedIndexes is specified".into(),
                field: f("backoffLimitPerIndex"),
            });
        }
        if let Some(c) = spec["completions"].as_i64()
            && m > c
        {
            out.push(invalid_num(
                f("maxFailedIndexes"),
                m,
                "must be less than or equal to completions",
            ));
        }
    }
    let template = &spec["template"];
    podspec::validate_template(template, &f("template"), out);
    let policy = template["spec"]["restartPolicy"].as_str().unwrap_or("");
    let policy_path = f("template.spec.restartPolicy");
    if !spec["podFailurePolicy"].is_null() {
        if policy != "Never" {
            out.push(invalid(
                policy_path,
                policy,
                "only \"Never\" is supported when podFailurePolicy is specified",
            ));
        }
        validate_pod_failure_policy(&spec["podFailurePolicy"], &f("podFailurePolicy"), out);
    } else if !matches!(policy, "OnFailure" | "Never") {
        out.push(not_supported(policy_path, policy, &["OnFailure", "Never"]));
    }
    if let Some(p) = spec["podReplacementPolicy"].as_str() {
        let allowed: &[&str] = if spec["podFailurePolicy"].is_null() {
            &["Failed", "TerminatingOrFailed"]
        } else {
            &["Failed"]
        };
        if !allowed.contains(&p) {
            out.push(not_supported(f("podReplacementPolicy"), p, allowed));
        }
    }
    if !spec["successPolicy"].is_null() {
        if !indexed {
            out.push(invalid(
                f("completionMode"),
                mode,
                "requires indexed completion mode",
            ));
        }
        let rules = spec["successPolicy"]["rules"].as_array();
        if rules.is_none_or(|r| r.is_empty()) {
            out.push(required(f("successPolicy.rules")));
        }
        for (i, r) in rules.into_iter().flatten().enumerate() {
            let rp = f(&format!("successPolicy.rules[{i}]"));
            if r["succeededIndexes"].is_null() && r["succeededCount"].is_null() {
                out.push(Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value: at least one of succeededCount or succeededIndexes must be specified".into(),
                    field: rp.clone(),
                });
            }
            if let Some(ix) = r["succeededIndexes"].as_str()
                && parse_indexes(ix, spec["completions"].as_i64().unwrap_or(0)).is_none()
            {
                out.push(invalid(
                    format!("{rp}.succeededIndexes"),
                    ix,
                    "error parsing succeededIndexes",
                ));
            }
            nonnegative(&r["succeededCount"], &format!("{rp}.succeededCount"), out);
        }
    }
}

fn validate_pod_failure_policy(pfp: &Value, root: &str, out: &mut Vec<Cause>) {
    for (i, rule) in pfp["rules"].as_array().into_iter().flatten().enumerate() {
        let rp = format!("{root}.rules[{i}]");
        let action = rule["action"].as_str().unwrap_or("");
        if !matches!(action, "FailJob" | "FailIndex" | "Ignore" | "Count") {
            out.push(not_supported(
                format!("{rp}.action"),
                action,
                &["Count", "FailIndex", "FailJob", "Ignore"],
            ));
        }
        let codes = &rule["onExitCodes"];
        let conds = &rule["onPodConditions"];
        if codes.is_null() == conds.is_null() {
            out.push(invalid(
                rp.clone(),
                "",
                "specifying one of OnExitCodes and OnPodConditions is required",
            ));
        }
        if codes.is_object() {
            let op = codes["operator"].as_str().unwrap_or("");
            if !matches!(op, "In" | "NotIn") {
                out.push(not_supported(
                    format!("{rp}.onExitCodes.operator"),
                    op,
                    &["In", "NotIn"],
                ));
            }
            let values: Vec<i64> = codes["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_i64)
                .collect();
            if values.is_empty() {
                out.push(Cause {
                    reason: "FieldValueInvalid".into(),
                    message: "Invalid value: []int32{}: at least one value is required".into(),
                    field: format!("{rp}.onExitCodes.values"),
                });
            }
            for (j, v) in values.iter().enumerate() {
                if *v == 0 && op == "In" {
                    out.push(invalid_num(
                        format!("{rp}.onExitCodes.values[{j}]"),
                        0,
                        "must not be 0 for the In operator",
                    ));
                }
                if j > 0 && values[j - 1] >= *v {
                    out.push(invalid_num(
                        format!("{rp}.onExitCodes.values[{j}]"),
                        *v,
                        "must be ordered",
                    ));
                }
            }
        }
    }
}

/// The indexes of an interval list (`1,3-5`), each below `completions`, in order; `None`
/// if malformed or out of range.
pub fn parse_indexes(text: &str, completions: i64) -> Option<Vec<i64>> {
    let mut out = Vec::new();
    if text.is_empty() {
        return Some(out);
    }
    let mut last = -1;
    for part in text.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<i64>().ok()?, b.parse::<i64>().ok()?),
            None => {
                let a = part.parse::<i64>().ok()?;
                (a, a)
            }
        };
        if a > b || a <= last || b >= completions || a < 0 {
            return None;
        }
        out.extend(a..=b);
        last = b;
    }
    Some(out)
}

/// An ordered index list as its interval form (`0,2-4`).
pub fn format_indexes(indexes: &[i64]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indexes.len() {
        let start = indexes[i];
        let mut end = start;
        while i + 1 < indexes.len() && indexes[i + 1] == end + 1 {
            i += 1;
            end = indexes[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

fn validate_job(obj: &Value, out: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    validate_generated_selector(obj, out);
    validate_spec_common(spec, "spec", out);
    let sel = &spec["selector"];
    if !sel.is_object() {
        out.push(required("spec.selector"));
    } else {
        let labels = &spec["template"]["metadata"]["labels"];
        let empty = sel["matchLabels"].as_object().is_none_or(Map::is_empty)
            && sel["matchExpressions"].as_array().is_none_or(Vec::is_empty);
        if !empty && !selector_matches(sel, labels) {
            out.push(Cause {
                reason: "FieldValueInvalid".into(),
                message: format!(
                    "Invalid value: {}: `selector` does not match template `labels`",
                    go_map(labels)
                ),
                field: "spec.template.metadata.labels".into(),
            });
        }
    }
}

fn validate_status(status: &Value, out: &mut Vec<Cause>) {
    for k in ["active", "succeeded", "failed", "ready", "terminating"] {
        nonnegative(&status[k], &format!("status.{k}"), out);
    }
}

/// What may change on a Job (upstream's `ValidateJobSpecUpdate`).
fn validate_spec_update(old: &Value, new: &Value, out: &mut Vec<Cause>) {
    let (o, n) = (&old["spec"], &new["spec"]);
    let immutable = |k: &str, out: &mut Vec<Cause>| {
        if o[k] != n[k] {
            out.push(Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {}: {IMMUTABLE}", go_value(&n[k])),
                field: format!("spec.{k}"),
            });
        }
    };
    for k in [
        "selector",
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        immutable(k, out);
    }
    // Indexed Jobs may scale completions together with parallelism (elastic Jobs).
    let elastic = n["completionMode"] == "Indexed" && n["completions"] == n["parallelism"];
    if o["completions"] != n["completions"] && !elastic {
        immutable("completions", out);
    }
    // The template may change only while the Job is suspended and has not started
    // (mutable scheduling directives); anything else is immutable.
    let unstarted = n["suspend"] == json!(true) && old["status"]["startTime"].is_null();
    if o["template"] != n["template"] && !unstarted {
        out.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {}: {IMMUTABLE}", go_value(&n["template"])),
            field: "spec.template".into(),
        });
    }
}

/// A value in an error message (Go prints structs; a scalar is printed plainly here).
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// Whether `obj` has a condition `type` with status True.
pub fn has_condition(obj: &Value, kind: &str) -> bool {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

/// The STATUS cell (upstream's `printJob`).
fn status_cell(obj: &Value) -> &'static str {
    if has_condition(obj, "Complete") {
        "Complete"
    } else if has_condition(obj, "Failed") {
        "Failed"
    } else if !obj["metadata"]["deletionTimestamp"].is_null() {
        "Terminating"
    } else if has_condition(obj, "Suspended") {
        "Suspended"
    } else if has_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(obj, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

fn completions_cell(obj: &Value) -> String {
    let succeeded = obj["status"]["succeeded"].as_i64().unwrap_or(0);
    if let Some(c) = obj["spec"]["completions"].as_i64() {
        return format!("{succeeded}/{c}");
    }
    let p = obj["spec"]["parallelism"].as_i64().unwrap_or(0);
    if p > 1 {
        format!("{succeeded}/1 of {p}")
    } else {
        format!("{succeeded}/1")
    }
}

fn duration_cell(obj: &Value, now: jiff::Timestamp) -> String {
    let t = |k: &str| {
        obj["status"][k]
            .as_str()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
    };
    match (t("startTime"), t("completionTime")) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now.as_second() - start.as_second()),
        (Some(start), Some(end)) => human_duration(end.as_second() - start.as_second()),
    }
}

/// Job metadata labels default to the template's (after the generated ones are added).
fn default_labels(obj: &mut Value) {
    let labels = obj["spec"]["template"]["metadata"]["labels"].clone();
    if labels.as_object().is_some_and(|m| !m.is_empty())
        && obj["metadata"]["labels"]
            .as_object()
            .is_none_or(Map::is_empty)
    {
        obj["metadata"]["labels"] = labels;
    }
}

impl Strategy for Jobs {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::batch::v1::Job);

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null},
            "spec": {"template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": null}}},
            "status": {}})
    }

    /// Defaults, the generated selector, an empty status and generation 1.
    fn prepare_for_create(&self, obj: &mut Value) {
        set_spec_defaults(&mut obj["spec"]);
        if !manual(obj) {
            generate_selector(obj);
        }
        default_labels(obj);
        obj["status"] = json!({});
        obj["metadata"]["generation"] = json!(1);
    }

    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        set_spec_defaults(&mut new["spec"]);
        new["status"] = old.get("status").cloned().unwrap_or(json!({}));
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_job(obj, &mut out);
        out
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_job(new, &mut out);
        validate_spec_update(old, new, &mut out);
        out
    }

    fn validate_subresource_update(&self, sub: &str, old: &Value, new: &Value) -> Vec<Cause> {
        if sub == "status" {
            let mut out = Vec::new();
            validate_status(&new["status"], &mut out);
            return out;
        }
        self.validate_update(old, new)
    }

    /// batch/v1 keeps its historical default: a delete without a propagation policy
    /// orphans the pods (upstream's `jobStrategy.DefaultGarbageCollectionPolicy`).
    fn default_gc_policy(&self) -> GcPolicy {
        GcPolicy::OrphanDependents
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["status.successful"]
    }

    fn field_value(&self, obj: &Value, path: &str) -> String {
        match path {
            "status.successful" => obj["status"]["succeeded"].as_i64().unwrap_or(0).to_string(),
            _ => crate::apiserver::selectors::field_value(obj, path),
        }
    }

    fn list_merge(&self, path: &[&str]) -> ListMerge {
        list_merge(path)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            name_col(),
            col("Status", "string", 0, "Status of the job."),
            col(
                "Completions",
                "string",
                0,
                "The desired number of successfully finished pods the job should be run with.  Setting to null means that the success of any pod signals the success of all pods, and allows parallelism to have any positive value.  Setting to 1 means that parallelism is limited to 1 and the success of that pod signals the success of the job. More info: https://kubernetes.io/docs/concepts/workloads/controllers/jobs-run-to-completion/",
            ),
            col(
                "Duration",
                "string",
                0,
                "Time required to complete the job.",
            ),
            age_col(),
            col(
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            col(
                "Selector",
                "string",
                1,
                "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
            ),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let (names, images) = podspec::container_cells(&obj["spec"]["template"]["spec"]);
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(status_cell(obj)),
            json!(completions_cell(obj)),
            json!(duration_cell(obj, now)),
            json!(age(obj["metadata"]["creationTimestamp"].as_str(), now)),
            json!(names),
            json!(images),
            json!(format_selector(&obj["spec"]["selector"])),
        ]
    }
}

/// Strategic merge rules of a Job (and of a CronJob's `spec.jobTemplate` below `spec`).
pub fn list_merge(path: &[&str]) -> ListMerge {
    match path {
        ["spec", "template", "spec", rest @ ..] => pod::podspec_list_merge(rest),
        ["status", "conditions"] => ListMerge::MergeByKey("type"),
        _ => ListMerge::Replace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::validation::invalid_message;

    fn job() -> Value {
        json!({"metadata": {"name": "pi", "uid": "u-1"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "rkind/host"}]}}}})
    }

    #[test]
    fn defaults_and_generated_selector() {
        let st = Jobs::new();
        let mut obj = job();
        st.prepare_for_create(&mut obj);
        let spec = &obj["spec"];
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(
            spec["selector"],
            json!({"matchLabels": {CONTROLLER_UID: "u-1"}})
        );
        assert_eq!(
            spec["template"]["metadata"]["labels"],
            json!({"job-name": "pi", JOB_NAME: "pi", "controller-uid": "u-1", CONTROLLER_UID: "u-1"})
        );
        assert_eq!(
            obj["metadata"]["labels"],
            spec["template"]["metadata"]["labels"]
        );
        assert!(st.validate(&obj).is_empty(), "{:?}", st.validate(&obj));
        let mut per_index = job();
        per_index["spec"]["backoffLimitPerIndex"] = json!(1);
        per_index["spec"]["parallelism"] = json!(2);
        st.prepare_for_create(&mut per_index);
        assert_eq!(per_index["spec"]["backoffLimit"], i32::MAX);
        assert!(per_index["spec"]["completions"].is_null());
    }

    #[test]
    fn restart_policy_and_index_rules() {
        let st = Jobs::new();
        let mut obj = job();
        obj["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        obj["spec"]["completionMode"] = json!("Indexed");
        obj["spec"]["parallelism"] = json!(2);
        obj["spec"]["maxFailedIndexes"] = json!(1);
        st.prepare_for_create(&mut obj);
        obj["spec"]["completions"] = Value::Null;
        let got: Vec<String> = st
            .validate(&obj)
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            got,
            vec![
                "spec.completions: Required value: when completion mode is Indexed",
                "spec.backoffLimitPerIndex: Required value: when maxFailedIndexes is specified",
                "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
            ]
        );
    }

    #[test]
    fn foreign_selector_is_refused() {
        let st = Jobs::new();
        let mut obj = job();
        obj["spec"]["selector"] = json!({"matchLabels": {"app": "x"}});
        st.prepare_for_create(&mut obj);
        let msg = invalid_message("Job", "pi", &st.validate(&obj));
        assert!(msg.contains("spec.selector: Invalid value"), "{msg}");
        assert!(msg.contains("`selector` not auto-generated"), "{msg}");
        let mut manual = job();
        manual["spec"]["manualSelector"] = json!(true);
        manual["spec"]["selector"] = json!({"matchLabels": {"app": "x"}});
        manual["spec"]["template"]["metadata"] = json!({"labels": {"app": "x"}});
        st.prepare_for_create(&mut manual);
        assert!(st.validate(&manual).is_empty());
    }

    #[test]
    fn immutable_fields() {
        let st = Jobs::new();
        let mut old = job();
        st.prepare_for_create(&mut old);
        old["status"]["startTime"] = json!("2026-01-01T00:00:00Z");
        let mut new = old.clone();
        new["spec"]["completions"] = json!(3);
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("other");
        new["spec"]["parallelism"] = json!(4);
        let fields: Vec<String> = st
            .validate_update(&old, &new)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, vec!["spec.completions", "spec.template"]);
    }

    #[test]
    fn rows() {
        let st = Jobs::new();
        let mut obj = job();
        st.prepare_for_create(&mut obj);
        obj["status"] = json!({"succeeded": 1, "startTime": "2026-01-01T00:00:00Z",
            "completionTime": "2026-01-01T00:00:07Z",
            "conditions": [{"type": "Complete", "status": "True"}]});
        let cells = st.cells(&obj, jiff::Timestamp::now());
        assert_eq!(cells.len(), st.columns().len());
        assert_eq!(
            &cells[1..4],
            &[json!("Complete"), json!("1/1"), json!("7s")]
        );
        assert_eq!(cells[7], "batch.kubernetes.io/controller-uid=u-1");
        obj["spec"]["completions"] = Value::Null;
        obj["spec"]["parallelism"] = json!(3);
        obj["status"] = json!({});
        let cells = st.cells(&obj, jiff::Timestamp::now());
        assert_eq!(
            &cells[1..4],
            &[json!("Running"), json!("0/1 of 3"), json!("")]
        );
    }

    #[test]
    fn index_intervals() {
        assert_eq!(parse_indexes("0,2-4", 5), Some(vec![0, 2, 3, 4]));
        assert_eq!(parse_indexes("2-4", 4), None);
        assert_eq!(parse_indexes("3,1", 5), None);
        assert_eq!(format_indexes(&[0, 2, 3, 4, 7]), "0,2-4,7");
        assert_eq!(format_indexes(&[]), "");
    }
}
