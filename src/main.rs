fn main() {
    std::process::exit(rkind::cli::main());
}
