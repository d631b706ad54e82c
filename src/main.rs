fn main() {
    // Re-executed namespace helpers (sandbox holder, container init, nsexec) must run
    // before anything starts a thread: namespace syscalls need a single-threaded process.
    if let Some(code) = rkind::runtime::linux::maybe_run_helper() {
        std::process::exit(code);
    }
    std::process::exit(rkind::cli::main());
}
