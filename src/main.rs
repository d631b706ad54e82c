fn main() {
    // Re-executed namespace helpers (sandbox holder, container init, nsexec) must run
    // before anything starts a thread: namespace syscalls need a single-threaded process.
    if let Some(code) = rkind::runtime::linux::maybe_run_helper() {
        std::process::exit(code);
    }
    // Idle sockets must not run the process out of file descriptors (see limits).
    let _ = rkind::limits::raise_nofile();
    std::process::exit(rkind::cli::main());
}
