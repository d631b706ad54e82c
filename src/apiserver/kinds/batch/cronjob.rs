//! CronJobs (+`status`): upstream's v1 defaults (`SetDefaults_CronJob`: concurrencyPolicy
//! Allow, not suspended, history limits 3 and 1; the job template's pod spec defaults),
//! `ValidateCronJob*` (the schedule as robfig/cron parses it, `TZ=`/`CRON_TZ=` refused in
//! new schedules, `spec.timeZone` a known IANA zone, names of at most 52 characters so
//! that job names fit), and the NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE
//! columns (wide: CONTAINERS IMAGES SELECTOR).

use serde_json::{Value, json};

use super::cron::{Schedule, load_zone};
use super::job;
use crate::apiserver::kinds::core::podspec;
use crate::apiserver::kinds::{GET_PATCH_UPDATE, ListMerge, ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, human_duration, name_col, s};
use crate::apiserver::validation::{Cause, invalid, invalid_num, not_supported, required};

/// The longest CronJob name: job names add `-<minutes since epoch>` (11 characters).
const MAX_NAME: usize = 52;

/// The `CronJob` strategy.
pub struct CronJobs {
    def: ResourceDef,
}

impl CronJobs {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        CronJobs {
            def: ResourceDef::new("batch", "v1", "CronJob", "cronjobs")
                .short_names(&["cj"])
                .categories(&["all"])
                .subresource("status", "CronJob", GET_PATCH_UPDATE),
        }
    }
}

impl Default for CronJobs {
    fn default() -> Self {
        Self::new()
    }
}

fn set_defaults(obj: &mut Value) {
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    let spec = &mut obj["spec"];
    if spec["concurrencyPolicy"].is_null() {
        spec["concurrencyPolicy"] = json!("Allow");
    }
    if spec["suspend"].is_null() {
        spec["suspend"] = json!(false);
    }
    if spec["successfulJobsHistoryLimit"].is_null() {
        spec["successfulJobsHistoryLimit"] = json!(3);
    }
    if spec["failedJobsHistoryLimit"].is_null() {
        spec["failedJobsHistoryLimit"] = json!(1);
    }
    if spec["jobTemplate"]["spec"].is_object() {
        podspec::set_template_defaults(&mut spec["jobTemplate"]["spec"]["template"]);
    }
}

/// The rules of a schedule (`validateScheduleFormat`): robfig parses it, and a `TZ`
/// prefix is only kept by an update of a schedule that already had one.
fn validate_schedule(schedule: &str, allow_tz: bool, zone: &Value, out: &mut Vec<Cause>) {
    const FIELD: &str = "spec.schedule";
    if let Err(e) = Schedule::parse(schedule) {
        out.push(invalid(FIELD, schedule, &e.0));
    }
    if schedule.contains("TZ") {
        if allow_tz && !zone.is_null() {
            out.push(invalid(
                FIELD,
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz {
            out.push(invalid(
                FIELD,
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
}

/// `validateTimeZone`.
fn validate_zone(zone: &Value, out: &mut Vec<Cause>) {
    const FIELD: &str = "spec.timeZone";
    let Some(tz) = zone.as_str() else {
        return;
    };
    if tz.is_empty() {
        out.push(invalid(
            FIELD,
            tz,
            "timeZone must be nil or non-empty string",
        ));
        return;
    }
    let part_ok = |p: &str| {
        p != "."
            && p != ".."
            && !p.starts_with('-')
            && !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_+".contains(&b))
    };
    if !tz.split('/').all(part_ok) {
        out.push(invalid(FIELD, tz, &format!("unknown time zone {tz}")));
        return;
    }
    if tz.eq_ignore_ascii_case("Local") {
        out.push(invalid(
            FIELD,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    if let Err(e) = load_zone(tz) {
        out.push(invalid(FIELD, tz, &e.to_string()));
    }
}

fn validate_spec(obj: &Value, allow_tz: bool, out: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    let name = s(&obj["metadata"]["name"]);
    if name.len() > MAX_NAME {
        out.push(invalid(
            "metadata.name",
            name,
            "must be no more than 52 characters",
        ));
    }
    match spec["schedule"].as_str() {
        None | Some("") => out.push(required("spec.schedule")),
        Some(sched) => validate_schedule(sched, allow_tz, &spec["timeZone"], out),
    }
    validate_zone(&spec["timeZone"], out);
    let policy = spec["concurrencyPolicy"].as_str().unwrap_or("");
    if !matches!(policy, "Allow" | "Forbid" | "Replace") {
        if policy.is_empty() {
            out.push(required("spec.concurrencyPolicy"));
        } else {
            out.push(not_supported(
                "spec.concurrencyPolicy",
                policy,
                &["Allow", "Forbid", "Replace"],
            ));
        }
    }
    for k in [
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
    ] {
        if let Some(n) = spec[k].as_i64()
            && n < 0
        {
            out.push(invalid_num(
                format!("spec.{k}"),
                n,
                "must be greater than or equal to 0",
            ));
        }
    }
    let tspec = &spec["jobTemplate"]["spec"];
    job::validate_spec_common(tspec, "spec.jobTemplate.spec", out);
    if !tspec["selector"].is_null() {
        out.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!(
                "Invalid value: {}: `selector` will be auto-generated",
                serde_json::to_string(&tspec["selector"]).unwrap_or_default()
            ),
            field: "spec.jobTemplate.spec.selector".into(),
        });
    }
    if tspec["manualSelector"].as_bool() == Some(true) {
        out.push(not_supported(
            "spec.jobTemplate.spec.manualSelector",
            "true",
            &["nil", "false"],
        ));
    }
}

impl Strategy for CronJobs {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::batch::v1::CronJob);

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null},
            "spec": {"schedule": "", "jobTemplate": {"metadata": {"creationTimestamp": null},
                "spec": {"template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": null}}}}},
            "status": {}})
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        set_defaults(obj);
        obj["status"] = json!({});
        obj["metadata"]["generation"] = json!(1);
    }

    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        set_defaults(new);
        new["status"] = old.get("status").cloned().unwrap_or(json!({}));
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_spec(obj, false, &mut out);
        out
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let had_tz = old["spec"]["schedule"]
            .as_str()
            .is_some_and(|s| s.contains("TZ"));
        validate_spec(new, had_tz, &mut out);
        out
    }

    fn validate_subresource_update(&self, sub: &str, old: &Value, new: &Value) -> Vec<Cause> {
        if sub == "status" {
            return Vec::new();
        }
        self.validate_update(old, new)
    }

    fn list_merge(&self, path: &[&str]) -> ListMerge {
        match path {
            ["spec", "jobTemplate", rest @ ..] => job::list_merge(rest),
            _ => ListMerge::Replace,
        }
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            name_col(),
            col(
                "Schedule",
                "string",
                0,
                "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
            ),
            col(
                "Timezone",
                "string",
                0,
                "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones",
            ),
            col(
                "Suspend",
                "boolean",
                0,
                "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.",
            ),
            col(
                "Active",
                "integer",
                0,
                "A list of pointers to currently running jobs.",
            ),
            col(
                "Last Schedule",
                "string",
                0,
                "Information when was the last time the job was successfully scheduled.",
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
        let spec = &obj["spec"];
        let tspec = &spec["jobTemplate"]["spec"];
        let (names, images) = podspec::container_cells(&tspec["template"]["spec"]);
        let last = match obj["status"]["lastScheduleTime"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        {
            Some(t) => human_duration(now.as_second() - t.as_second()),
            None => "<none>".into(),
        };
        let zone = spec["timeZone"].as_str().unwrap_or("<none>");
        vec![
            json!(s(&obj["metadata"]["name"])),
            json!(s(&spec["schedule"])),
            json!(zone),
            // Upstream prints the pointer as a word ("True", "False", "<unset>").
            json!(match spec["suspend"].as_bool() {
                Some(true) => "True",
                Some(false) => "False",
                None => "<unset>",
            }),
            json!(obj["status"]["active"].as_array().map_or(0, Vec::len)),
            json!(last),
            json!(age(obj["metadata"]["creationTimestamp"].as_str(), now)),
            json!(names),
            json!(images),
            json!(job::format_selector(&tspec["selector"])),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cj(schedule: &str) -> Value {
        json!({"metadata": {"name": "tick"},
            "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure",
                "containers": [{"name": "c", "image": "rkind/host"}]}}}}}})
    }

    fn errors(st: &CronJobs, obj: &Value) -> Vec<String> {
        st.validate(obj)
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn defaults() {
        let st = CronJobs::new();
        let mut obj = cj("*/1 * * * *");
        st.prepare_for_create(&mut obj);
        assert_eq!(obj["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(obj["spec"]["suspend"], false);
        assert_eq!(obj["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(obj["spec"]["failedJobsHistoryLimit"], 1);
        assert_eq!(
            obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
            "ClusterFirst"
        );
        assert!(
            obj["spec"]["jobTemplate"]["spec"]["completions"].is_null(),
            "the job template gets no Job defaults"
        );
        assert!(errors(&st, &obj).is_empty(), "{:?}", errors(&st, &obj));
    }

    #[test]
    fn schedule_and_zone_rules() {
        let st = CronJobs::new();
        let mut obj = cj("61 * * * *");
        st.prepare_for_create(&mut obj);
        assert_eq!(
            errors(&st, &obj),
            vec![
                "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"
            ]
        );
        let mut tz = cj("TZ=UTC * * * * *");
        st.prepare_for_create(&mut tz);
        assert_eq!(
            errors(&st, &tz),
            vec![
                "spec.schedule: Invalid value: \"TZ=UTC * * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            ]
        );
        // An update keeps a schedule that already had the prefix.
        assert!(st.validate_update(&tz, &tz).is_empty());
        let mut zone = cj("0 9 * * *");
        zone["spec"]["timeZone"] = json!("Nowhere/City");
        st.prepare_for_create(&mut zone);
        assert_eq!(
            errors(&st, &zone),
            vec!["spec.timeZone: Invalid value: \"Nowhere/City\": unknown time zone Nowhere/City"]
        );
        zone["spec"]["timeZone"] = json!("Europe/Paris");
        assert!(errors(&st, &zone).is_empty());
        let mut long = cj("@hourly");
        long["metadata"]["name"] = json!("x".repeat(53));
        st.prepare_for_create(&mut long);
        assert_eq!(st.validate(&long)[0].field, "metadata.name");
    }

    #[test]
    fn rows() {
        let st = CronJobs::new();
        let mut obj = cj("*/1 * * * *");
        st.prepare_for_create(&mut obj);
        let now = jiff::Timestamp::now();
        let cells = st.cells(&obj, now);
        assert_eq!(cells.len(), st.columns().len());
        assert_eq!(
            &cells[1..6],
            &[
                json!("*/1 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(0),
                json!("<none>")
            ]
        );
    }
}
