//! Helpers shared by the benchmarks: start/stop a release `rkind up`, medians,
//! process memory and kubectl timings.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

pub fn start(dir: &Path) -> (Child, f64) {
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rkind"))
        .args(["up", "--name", "bench", "--data-dir"])
        .arg(dir.join("data"))
        .arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .env("HOME", dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rkind");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    for line in lines.by_ref() {
        if line.expect("line").contains("is ready") {
            break;
        }
    }
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    std::thread::spawn(move || for _ in lines {});
    (child, ms)
}

pub fn stop(mut child: Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

pub fn time_cmd(dir: &Path, args: &[&str], n: usize) -> f64 {
    let mut v = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let ok = Command::new("kubectl")
            .args(args)
            .env("HOME", dir)
            .env("KUBECONFIG", dir.join("kubeconfig"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kubectl {args:?} failed");
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    median(v)
}

pub fn pki_for(data: &Path) -> rkind::pki::ClusterPki {
    rkind::pki::ClusterPki::load_or_create(&data.join("pki"), "bench-control-plane").expect("pki")
}
