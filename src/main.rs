//! The `functiongraph_exporter` binary: everything is in the library.

// mimalloc instead of the system allocator: the exposition is rebuilt from
// multi-megabyte buffers on whichever blocking-pool thread serves a scrape,
// and glibc's per-thread arenas kept growing with that pattern in the soak
// test, where mimalloc holds resident memory flat (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    functiongraph_exporter::cli::main()
}
