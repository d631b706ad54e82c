//! Images: an OCI archive built from the distribution's static busybox is loaded with
//! `rkind load image` into a running cluster, listed, and run by a pod.

mod common;

use common::Cluster;

/// Builds the busybox OCI archive (the project's script) in the cluster's directory.
fn build_busybox_archive(c: &Cluster) -> std::path::PathBuf {
    let archive = c.dir.path().join("busybox-oci.tar");
    let out = std::process::Command::new("bash")
        .arg(common::source_file("scripts/build-busybox-image.sh"))
        .arg(&archive)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    archive
}

#[test]
fn load_busybox_image_and_run_it() {
    let c = Cluster::start("images");
    let archive = build_busybox_archive(&c);
    let data = c.data_dir();
    let data = data.to_str().unwrap();
    let load = c.rkind(&[
        "load",
        "image",
        archive.to_str().unwrap(),
        "--name",
        "images",
        "--data-dir",
        data,
    ]);
    let text =
        String::from_utf8_lossy(&load.stdout).to_string() + &String::from_utf8_lossy(&load.stderr);
    assert!(
        load.status.success() && text.contains("docker.io/library/busybox:latest"),
        "{text}"
    );
    let list = c.rkind(&["images", "--name", "images", "--data-dir", data]);
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        list.contains("docker.io/library/busybox:latest")
            && list.contains("docker.io/rkind/host:latest"),
        "{list}"
    );
    // A bad archive is refused with a clear message and changes nothing.
    let junk = c.dir.path().join("junk.tar");
    std::fs::write(&junk, b"junk").unwrap();
    let bad = c.rkind(&[
        "load",
        "image",
        junk.to_str().unwrap(),
        "--name",
        "images",
        "--data-dir",
        data,
    ]);
    assert!(!bad.status.success());
    c.ok(&["run", "bb", "--image=busybox", "--restart=Never", "--", "sh", "-c", "ls /bin/busybox; test -e /etc/os-release && echo host-fs || echo busybox-fs; echo ok > /tmp/w && cat /tmp/w"]);
    c.eventually(30, "busybox pod succeeded", || {
        c.ok(&["get", "pod", "bb", "-o", "jsonpath={.status.phase}"]) == "Succeeded"
    });
    let logs = c.ok(&["logs", "bb"]);
    assert!(
        logs.contains("/bin/busybox") && logs.contains("busybox-fs") && logs.contains("ok"),
        "{logs}"
    );
    let image_id = c.ok(&[
        "get",
        "pod",
        "bb",
        "-o",
        "jsonpath={.status.containerStatuses[0].imageID}",
    ]);
    assert!(image_id.starts_with("sha256:"), "{image_id}");
}

/// Copied container roots (`RKIND_NO_OVERLAY=1`, what rkind falls back to where the
/// kernel refuses overlayfs in a user namespace): an image's copy with a volume in it and
/// the host image, each writable without touching the host or the image.
#[test]
fn copied_roots_where_overlayfs_is_refused() {
    let c = Cluster::start_with_env("copied", &[("RKIND_NO_OVERLAY", "1")]);
    let level = c.isolation();
    let cond = c.ok(&[
        "get",
        "node",
        "-o",
        "jsonpath={.items[0].status.conditions[?(@.type==\"Isolation\")].message}",
    ]);
    if level != "unprivileged" {
        assert!(cond.contains("copied roots"), "{cond}");
    }
    let archive = build_busybox_archive(&c);
    let data = c.data_dir().display().to_string();
    let load = c.rkind(&[
        "load",
        "image",
        archive.to_str().unwrap(),
        "--name",
        "copied",
        "--data-dir",
        &data,
    ]);
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    c.ok(&[
        "create",
        "configmap",
        "cm",
        "--from-literal=k=from-configmap",
    ]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bb"},"spec":{"restartPolicy":"Never",
            "containers":[{"name":"c","image":"busybox","command":["sh","-c",
              "cat /cfg/k; echo; echo w > /bin/new && cat /bin/new; test -e /etc/os-release && echo host-fs || echo busybox-fs"],
              "volumeMounts":[{"name":"cfg","mountPath":"/cfg"}]}],
            "volumes":[{"name":"cfg","configMap":{"name":"cm"}}]}}"#,
    );
    c.ok(&["run", "host", "--image=rkind/host", "--restart=Never", "--", "sh", "-c", "echo t > /tmp/copied-root-probe && cat /tmp/copied-root-probe && test -x /bin/sh && echo host-fs"]);
    for pod in ["bb", "host"] {
        c.eventually(30, &format!("pod {pod} succeeded"), || {
            c.ok(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"]) == "Succeeded"
        });
    }
    let bb = c.ok(&["logs", "bb"]);
    for want in ["from-configmap", "w\n", "busybox-fs"] {
        assert!(bb.contains(want), "missing {want:?} in {bb}");
    }
    let host = c.ok(&["logs", "host"]);
    assert!(host.contains("t\nhost-fs"), "{host}");
    // The image itself is unchanged: a second pod does not see the first one's file.
    c.ok(&[
        "run",
        "again",
        "--image=busybox",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        "test -e /bin/new && echo leaked || echo clean",
    ]);
    c.eventually(30, "pod again succeeded", || {
        c.ok(&["get", "pod", "again", "-o", "jsonpath={.status.phase}"]) == "Succeeded"
    });
    assert_eq!(c.ok(&["logs", "again"]).trim(), "clean");
}
