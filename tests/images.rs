//! Images: an OCI archive built from the distribution's static busybox is loaded with
//! `rkind load image` into a running cluster, listed, and run by a pod.

mod common;

use common::Cluster;

#[test]
fn load_busybox_image_and_run_it() {
    let c = Cluster::start("images");
    let archive = c.dir.path().join("busybox-oci.tar");
    let script = common::source_file("scripts/build-busybox-image.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(&archive)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
