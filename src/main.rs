//! The `functiongraph_exporter` binary: everything is in the library.

// mimalloc instead of the system allocator: the exposition is rebuilt from
// multi-megabyte buffers on whichever blocking-pool thread serves a scrape,
// and glibc's per-thread arenas kept growing with that pattern in the soak
// test, where mimalloc holds resident memory flat (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` and `mi_option_purge_delay` in
/// mimalloc's `mi_option_e` (the same in v2 and v3; the `-sys` crate does
/// not name them).
#[cfg(target_os = "linux")]
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
#[cfg(target_os = "linux")]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc's options, set before mimalloc starts: its own start-up runs as
/// a constructor of priority 101 and reserves its first arena then, so this
/// one runs at priority 100 (`main` would be too late for the arena).
/// `.init_array` is ELF's: elsewhere mimalloc keeps its defaults.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00100")]
static MIMALLOC_OPTIONS: extern "C" fn() = mimalloc_options;

/// The resident memory follows what is in use (see BENCHMARKS.md):
/// - freed pages go back to the system at once instead of after mimalloc's
///   default 10 ms, which, for a thread that then goes idle (a
///   blocking-pool thread after a scrape, a worker after a poll burst), is
///   never;
/// - an arena's memory is committed as it is used, not all at once when it
///   is reserved (that alone was 19 MiB resident at 10 functions).
///
/// An operator's `MIMALLOC_*` setting still wins. Nothing here allocates:
/// the allocator is not started yet.
#[cfg(target_os = "linux")]
extern "C" fn mimalloc_options() {
    for (option, env, value) in [
        (MI_OPTION_PURGE_DELAY, c"MIMALLOC_PURGE_DELAY", 0),
        (
            MI_OPTION_ARENA_EAGER_COMMIT,
            c"MIMALLOC_ARENA_EAGER_COMMIT",
            0,
        ),
    ] {
        // SAFETY: reads the environment and sets an option's value, before
        // any thread but this one exists.
        unsafe {
            if libc::getenv(env.as_ptr()).is_null() {
                libmimalloc_sys::mi_option_set(option, value);
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    functiongraph_exporter::cli::main()
}
