fn main() {
    std::process::exit(usestats::cli::main());
}
