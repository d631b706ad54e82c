//! The apply and ownership rules, one test per rule.

use serde_json::{Value, json};

use super::schema::{KindSchema, for_kind};
use super::*;

const T0: &str = "2026-01-01T00:00:00Z";
const T1: &str = "2026-01-01T00:00:05Z";

fn tgt<'a>(s: &'a KindSchema, api_version: &'a str, now: &'a str) -> Target<'a> {
    Target {
        schema: s,
        api_version,
        subresource: "",
        now,
    }
}

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}, "data": data})
}

/// The entry of `manager` (and operation) in `obj`'s managedFields.
fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

/// Stored objects carry a uid; apply results are what the handler stores.
fn stored(mut v: Value) -> Value {
    v["metadata"]["uid"] = json!("u-1");
    v
}

#[test]
fn apply_creates_with_one_apply_entry_and_never_owns_identity_metadata() {
    let s = for_kind("", "ConfigMap");
    let out = apply(None, &cm(json!({"a": "1"})), "a", false, &tgt(&s, "v1", T0)).unwrap();
    assert_eq!(out["data"], json!({"a": "1"}));
    assert_eq!(
        out["metadata"]["managedFields"],
        json!([{"manager": "a", "operation": "Apply", "apiVersion": "v1", "time": T0,
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}])
    );
    assert!(out["metadata"].get("creationTimestamp").is_none());
}

#[test]
fn second_manager_changing_a_field_conflicts_naming_the_first() {
    let s = for_kind("", "ConfigMap");
    let t = tgt(&s, "v1", T0);
    let live = stored(apply(None, &cm(json!({"x": "1", "y": "1"})), "a", false, &t).unwrap());
    let err = apply(Some(&live), &cm(json!({"x": "2"})), "b", false, &t).unwrap_err();
    assert_eq!(err.status_code(), 409);
    assert_eq!(err.reason(), "Conflict");
    assert_eq!(
        err.message(),
        "Apply failed with 1 conflict: conflict with \"a\": .data.x"
    );
    assert_eq!(
        err.causes(),
        vec![ConflictCause {
            reason: "FieldManagerConflict",
            message: "conflict with \"a\"".into(),
            field: ".data.x".into(),
        }]
    );
    let err = apply(
        Some(&live),
        &cm(json!({"x": "2", "y": "2"})),
        "b",
        false,
        &t,
    )
    .unwrap_err();
    assert_eq!(
        err.message(),
        "Apply failed with 2 conflicts: conflicts with \"a\":\n- .data.x\n- .data.y"
    );
}

#[test]
fn force_takes_ownership_from_the_other_manager() {
    let s = for_kind("", "ConfigMap");
    let t = tgt(&s, "v1", T0);
    let live = stored(apply(None, &cm(json!({"x": "1", "y": "1"})), "a", false, &t).unwrap());
    let out = apply(Some(&live), &cm(json!({"x": "2"})), "b", true, &t).unwrap();
    assert_eq!(out["data"], json!({"x": "2", "y": "1"}));
    assert_eq!(
        entry(&out, "a", "Apply").unwrap()["fieldsV1"],
        json!({"f:data": {"f:y": {}}})
    );
    assert_eq!(
        entry(&out, "b", "Apply").unwrap()["fieldsV1"],
        json!({"f:data": {"f:x": {}}})
    );
}

#[test]
fn same_value_is_shared_ownership_without_conflict() {
    let s = for_kind("", "ConfigMap");
    let t = tgt(&s, "v1", T0);
    let live = stored(apply(None, &cm(json!({"x": "1"})), "a", false, &t).unwrap());
    let out = apply(Some(&live), &cm(json!({"x": "1"})), "b", false, &t).unwrap();
    assert!(entry(&out, "a", "Apply").is_some());
    assert_eq!(
        entry(&out, "b", "Apply").unwrap()["fieldsV1"],
        json!({"f:data": {"f:x": {}}})
    );
    // The object did not change: the new entry gets no time.
    assert!(entry(&out, "b", "Apply").unwrap().get("time").is_none());
}

#[test]
fn a_field_dropped_from_the_config_is_removed_only_when_nobody_else_owns_it() {
    let s = for_kind("", "ConfigMap");
    let t = tgt(&s, "v1", T0);
    let live = stored(
        apply(
            None,
            &cm(json!({"x": "1", "y": "1", "z": "1"})),
            "a",
            false,
            &t,
        )
        .unwrap(),
    );
    // b shares y.
    let live = stored(apply(Some(&live), &cm(json!({"y": "1"})), "b", false, &t).unwrap());
    // An update by an editor takes z.
    let mut edited = live.clone();
    edited["data"]["z"] = json!("9");
    track_update(Some(&live), &mut edited, "kubectl-edit", &t);
    let live = stored(edited);
    assert_eq!(
        entry(&live, "kubectl-edit", "Update").unwrap()["fieldsV1"],
        json!({"f:data": {"f:z": {}}})
    );
    let out = apply(Some(&live), &cm(json!({"x": "1"})), "a", false, &t).unwrap();
    assert_eq!(out["data"], json!({"x": "1", "y": "1", "z": "9"}));
    let out = stored(out);
    let mut bare = cm(json!({}));
    bare.as_object_mut().unwrap().remove("data");
    let out = apply(Some(&out), &bare, "a", false, &t).unwrap();
    assert_eq!(out["data"], json!({"y": "1", "z": "9"}), "x was a's alone");
    assert!(entry(&out, "a", "Apply").is_none(), "a owns nothing now");
    // An empty map in a config is owned as such.
    let out = apply(Some(&stored(out)), &cm(json!({})), "a", false, &t).unwrap();
    assert_eq!(
        entry(&out, "a", "Apply").unwrap()["fieldsV1"],
        json!({"f:data": {}})
    );
}

fn pod(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
}

#[test]
fn containers_merge_by_name_and_each_applier_owns_its_own() {
    let s = for_kind("", "Pod");
    let t = tgt(&s, "v1", T0);
    let live = stored(
        apply(
            None,
            &pod(json!([{"name": "app", "image": "app:1", "ports": [{"containerPort": 80}]}])),
            "a",
            false,
            &t,
        )
        .unwrap(),
    );
    assert_eq!(
        entry(&live, "a", "Apply").unwrap()["fieldsV1"],
        json!({"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {},
            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}})
    );
    let live = stored(
        apply(
            Some(&live),
            &pod(json!([{"name": "sidecar", "image": "side:1"}])),
            "b",
            false,
            &t,
        )
        .unwrap(),
    );
    let names: Vec<&str> = live["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "sidecar"]);
    // a changes its image: no conflict with b; b's container is untouched.
    let out = apply(
        Some(&live),
        &pod(json!([{"name": "app", "image": "app:2", "ports": [{"containerPort": 80}]}])),
        "a",
        false,
        &t,
    )
    .unwrap();
    assert_eq!(out["spec"]["containers"][0]["image"], "app:2");
    assert_eq!(out["spec"]["containers"][1]["image"], "side:1");
    // b touching a's image conflicts on the keyed path.
    let err = apply(
        Some(&live),
        &pod(json!([{"name": "app", "image": "other"}])),
        "b",
        false,
        &t,
    )
    .unwrap_err();
    assert_eq!(
        err.message(),
        "Apply failed with 1 conflict: conflict with \"a\": .spec.containers[name=\"app\"].image"
    );
    // b dropping its container removes it (only b owned it).
    let out = apply(Some(&live), &pod(json!([])), "b", false, &t).unwrap();
    assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 1);
}

#[test]
fn atomic_lists_are_replaced_whole_and_conflict_whole() {
    let s = for_kind("", "Pod");
    let t = tgt(&s, "v1", T0);
    let mut cfg = pod(json!([{"name": "c", "image": "i"}]));
    cfg["spec"]["tolerations"] = json!([{"key": "a"}, {"key": "b"}]);
    let live = stored(apply(None, &cfg, "a", false, &t).unwrap());
    assert!(
        entry(&live, "a", "Apply").unwrap()["fieldsV1"]["f:spec"]["f:tolerations"]
            .as_object()
            .unwrap()
            .is_empty()
    );
    let mut other = pod(json!([{"name": "c", "image": "i"}]));
    other["spec"]["tolerations"] = json!([{"key": "z"}]);
    let err = apply(Some(&live), &other, "b", false, &t).unwrap_err();
    assert_eq!(
        err.message(),
        "Apply failed with 1 conflict: conflict with \"a\": .spec.tolerations"
    );
    let out = apply(Some(&live), &other, "b", true, &t).unwrap();
    assert_eq!(out["spec"]["tolerations"], json!([{"key": "z"}]));
}

fn deploy(replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
}

#[test]
fn conflict_with_an_update_manager_prints_its_api_version() {
    let s = for_kind("apps", "Deployment");
    let t = tgt(&s, "apps/v1", T0);
    let mut created = deploy(1);
    track_update(None, &mut created, "kubectl-client-side-apply", &t);
    let e = entry(&created, "kubectl-client-side-apply", "Update").unwrap();
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["time"], T0);
    // New maps and list items carry ".": they were added whole.
    assert_eq!(
        e["fieldsV1"]["f:spec"]["f:template"]["f:metadata"]["f:labels"],
        json!({".": {}, "f:app": {}})
    );
    assert_eq!(
        e["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"],
        json!({".": {}, "f:image": {}, "f:name": {}})
    );
    assert_eq!(
        e["fieldsV1"]["f:spec"]["f:selector"],
        json!({}),
        "atomic struct"
    );
    assert!(e["fieldsV1"]["f:spec"].get(".").is_none());
    let live = stored(created);
    let err = apply(Some(&live), &deploy(3), "a", false, &t).unwrap_err();
    assert_eq!(
        err.message(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
}

#[test]
fn updates_move_changed_fields_to_the_writer() {
    let s = for_kind("", "ConfigMap");
    let t = tgt(&s, "v1", T0);
    let live = stored(apply(None, &cm(json!({"x": "1", "y": "1"})), "a", false, &t).unwrap());
    let mut new = live.clone();
    new["data"]["x"] = json!("2");
    new["data"]["w"] = json!("new");
    new["metadata"]["labels"] = json!({"l": "v"});
    track_update(Some(&live), &mut new, "kubectl-edit", &tgt(&s, "v1", T1));
    assert_eq!(
        entry(&new, "kubectl-edit", "Update").unwrap()["fieldsV1"],
        json!({"f:data": {"f:w": {}, "f:x": {}}, "f:metadata": {"f:labels": {".": {}, "f:l": {}}}})
    );
    assert_eq!(
        entry(&new, "a", "Apply").unwrap()["fieldsV1"],
        json!({"f:data": {"f:y": {}}})
    );
    // Apply entries come first.
    assert_eq!(new["metadata"]["managedFields"][0]["manager"], "a");
}

#[test]
fn client_managed_fields_replace_empty_list_clears_invalid_keeps_stored() {
    let s = for_kind("", "ConfigMap");
    let t = tgt(&s, "v1", T0);
    let live = stored(apply(None, &cm(json!({"x": "1"})), "a", false, &t).unwrap());
    // Replaced by what the client sent.
    let mut new = live.clone();
    new["metadata"]["managedFields"] = json!([{"manager": "z", "operation": "Update", "apiVersion": "v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:x": {}}}}]);
    track_update(Some(&live), &mut new, "kubectl-edit", &t);
    let mf = new["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0]["manager"], "z");
    // Invalid: the stored ones stay.
    let mut new = live.clone();
    new["metadata"]["managedFields"] = json!([{"manager": "z", "operation": "Bogus", "apiVersion": "v1",
        "fieldsType": "FieldsV1", "fieldsV1": {}}]);
    track_update(Some(&live), &mut new, "kubectl-edit", &t);
    assert_eq!(
        new["metadata"]["managedFields"],
        live["metadata"]["managedFields"]
    );
    // []: cleared, and an untracked object stays untracked on update.
    let mut new = live.clone();
    new["metadata"]["managedFields"] = json!([]);
    new["data"]["x"] = json!("2");
    track_update(Some(&live), &mut new, "kubectl-edit", &t);
    assert!(new["metadata"].get("managedFields").is_none());
    let cleared = stored(new);
    let mut next = cleared.clone();
    next["data"]["x"] = json!("3");
    track_update(Some(&cleared), &mut next, "kubectl-edit", &t);
    assert!(next["metadata"].get("managedFields").is_none());
    // The first apply to it hands everything to "before-first-apply".
    let err = apply(Some(&cleared), &cm(json!({"x": "4"})), "a", false, &t).unwrap_err();
    assert_eq!(
        err.message(),
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using v1: .data.x"
    );
}

#[test]
fn status_subresource_ownership_is_separate_and_reset_fields_are_not_owned() {
    let s = for_kind("", "Pod");
    let main = tgt(&s, "v1", T0);
    let status = Target {
        subresource: "status",
        ..main
    };
    let mut cfg = pod(json!([{"name": "c", "image": "i"}]));
    cfg["status"] = json!({"phase": "Running"});
    let live = stored(apply(None, &cfg, "a", false, &main).unwrap());
    assert!(
        entry(&live, "a", "Apply").unwrap()["fieldsV1"]
            .get("f:status")
            .is_none(),
        "status is reset on the main resource"
    );
    let st = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let out = stored(apply(Some(&live), &st, "kubelet", false, &status).unwrap());
    let e = entry(&out, "kubelet", "Apply").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:status": {}, "f:type": {}}}}})
    );
    let other = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    let err = apply(Some(&out), &other, "x", false, &status).unwrap_err();
    assert_eq!(
        err.message(),
        "Apply failed with 1 conflict: conflict with \"kubelet\" with subresource \"status\": .status.conditions[type=\"Ready\"].status"
    );
}

#[test]
fn configs_upstream_rejects() {
    let s = for_kind("", "ConfigMap");
    let t = tgt(&s, "v1", T0);
    let mut wrong = cm(json!({}));
    wrong["kind"] = json!("Secret");
    let e = apply(None, &wrong, "a", false, &t).unwrap_err();
    assert_eq!(e.message(), "invalid object type: /v1, Kind=Secret");
    assert_eq!(e.status_code(), 400);
    let e = apply(None, &json!({"data": {}}), "a", false, &t).unwrap_err();
    assert_eq!(e.message(), "invalid object type: /, Kind=");
    let mut mf = cm(json!({}));
    mf["metadata"]["managedFields"] = json!([]);
    let e = apply(None, &mf, "a", false, &t).unwrap_err();
    assert_eq!(e.message(), "metadata.managedFields must be nil");
    let mut unknown = cm(json!({}));
    unknown["spec"] = json!({"x": 1});
    let e = apply(None, &unknown, "a", false, &t).unwrap_err();
    assert_eq!(
        e.message(),
        "failed to create typed patch object (default/c; /v1, Kind=ConfigMap): .spec: field not declared in schema"
    );
    assert_eq!((e.status_code(), e.reason()), (500, ""));
    assert_eq!(
        apply(None, &json!([1]), "a", false, &t).unwrap_err(),
        ApplyError::NotAnObject
    );
    let dup = pod(json!([{"name": "a"}, {"name": "a"}]));
    let ps = for_kind("", "Pod");
    let e = apply(None, &dup, "a", false, &tgt(&ps, "v1", T0)).unwrap_err();
    assert_eq!(
        e.message(),
        "failed to create typed patch object (/p; /v1, Kind=Pod): .spec.containers: duplicate entries for key [name=\"a\"]"
    );
}

#[test]
fn kubectl_upgrades_from_client_side_apply_without_conflicts() {
    let s = for_kind("", "ConfigMap");
    let t = tgt(&s, "v1", T0);
    let last = cm(json!({"x": "1"}));
    let mut created = cm(json!({"x": "1"}));
    created["metadata"]["annotations"] = json!({LAST_APPLIED: last.to_string()});
    track_update(None, &mut created, "kubectl-client-side-apply", &t);
    let live = stored(created);
    let cfg = cm(json!({"x": "2"}));
    // Another manager would conflict ...
    assert!(matches!(
        apply(Some(&live), &cm(json!({"x": "2"})), "other", false, &t),
        Err(ApplyError::Conflicts(_))
    ));
    // ... kubectl takes over the fields it applied client-side.
    let out = apply(Some(&live), &cfg, "kubectl", false, &t).unwrap();
    assert_eq!(out["data"]["x"], "2");
    let ann = out["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .unwrap();
    assert!(ann.ends_with('\n'));
    let ann: Value = serde_json::from_str(ann).unwrap();
    assert_eq!(ann["data"], json!({"x": "2"}));
    assert!(ann["metadata"]["annotations"].get(LAST_APPLIED).is_none());
}

#[test]
fn update_managers_are_capped_at_ten() {
    let s = for_kind("", "ConfigMap");
    let mut live = stored(apply(None, &cm(json!({})), "a", false, &tgt(&s, "v1", T0)).unwrap());
    for i in 0..12 {
        let now = format!("2026-01-01T00:01:{i:02}Z");
        let mut new = live.clone();
        new["data"][format!("k{i}")] = json!("v");
        track_update(
            Some(&live),
            &mut new,
            &format!("m{i:02}"),
            &tgt(&s, "v1", &now),
        );
        live = stored(new);
    }
    let mf = live["metadata"]["managedFields"].as_array().unwrap();
    let updates = mf.iter().filter(|e| e["operation"] == "Update").count();
    assert_eq!(updates, 10);
    let ancient = entry(&live, "ancient-changes", "Update").unwrap();
    assert_eq!(
        ancient["fieldsV1"],
        json!({"f:data": {"f:k0": {}, "f:k1": {}, "f:k2": {}}})
    );
}

#[test]
fn untyped_kinds_track_every_map_key_as_a_member() {
    let s = KindSchema::untyped("example.com", "Widget");
    let t = tgt(&s, "example.com/v1", T0);
    let cfg = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 1, "tags": ["a"]}});
    let out = apply(None, &cfg, "a", false, &t).unwrap();
    assert_eq!(
        entry(&out, "a", "Apply").unwrap()["fieldsV1"],
        json!({"f:spec": {".": {}, "f:size": {}, "f:tags": {}}})
    );
}

#[test]
fn manager_names_options_and_url_checks() {
    assert_eq!(
        manager_or_user_agent(None, "kubectl/v1.32.4 (linux/amd64) kubernetes/4cb5f07"),
        "kubectl"
    );
    assert_eq!(manager_or_user_agent(Some("mine"), "kubectl/v1"), "mine");
    assert_eq!(manager_or_user_agent(Some(""), "curl/8"), "curl");
    assert_eq!(manager_or_user_agent(None, &"x".repeat(300)).len(), 128);
    let c = validate_patch_options(None, true, false);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].field, "fieldManager");
    assert_eq!(c[0].message, "Required value: is required for apply patch");
    let c = validate_patch_options(Some("m"), false, true);
    assert_eq!(c[0].field, "force");
    assert!(validate_patch_options(Some("m"), true, true).is_empty());
    assert_eq!(
        validate_patch_options(Some(&"m".repeat(129)), true, false)[0].reason,
        "FieldValueTooLong"
    );
    let obj = json!({"metadata": {"name": "b", "namespace": "ns"}});
    assert_eq!(
        check_name(&obj, "a", Some("ns")).unwrap_err().message(),
        "the name of the object (b) does not match the name on the URL (a)"
    );
    assert_eq!(
        check_name(&obj, "b", Some("other")).unwrap_err().message(),
        "the namespace of the object (ns) does not match the namespace on the request (other)"
    );
    assert!(check_name(&obj, "b", Some("ns")).is_ok());
}
