//! The `functiongraph_exporter` binary: everything is in the library.

fn main() -> std::process::ExitCode {
    functiongraph_exporter::cli::main()
}
