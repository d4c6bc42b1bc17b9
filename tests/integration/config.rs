//! Configuration fixtures: every `*.ok.toml` validates, every `*.bad.toml`
//! fails with the message on its first line (`# expect: ...`), which must
//! start the error after the file name. And `config/example.toml`, which
//! documents every key, validates.

use std::path::{Path, PathBuf};

use functiongraph_exporter::config::Config;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn expectation(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{}: first line must be '# expect: ...'", path.display()))
        .to_owned()
}

/// Each fixture gives exactly the outcome its first line announces.
#[test]
fn fixtures_validate_or_fail_with_their_message() {
    let files = fixtures();
    assert!(files.len() >= 10, "fixtures found: {files:?}");
    let mut failures = Vec::new();
    for path in &files {
        let expect = expectation(path);
        let name = path.file_name().unwrap().to_string_lossy();
        let result = Config::load(path);
        match (name.ends_with(".ok.toml"), result) {
            (true, Ok(_)) => {}
            (true, Err(e)) => failures.push(format!("{name}: expected ok, got: {e}")),
            (false, Ok(_)) => failures.push(format!("{name}: expected an error, got ok")),
            (false, Err(e)) => {
                let want = format!("{}: {expect}", path.display());
                let got = e.to_string();
                if !got.starts_with(&want) {
                    failures.push(format!(
                        "{name}:\n  want prefix: {want}\n  got:         {got}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The documented example is a valid configuration, and the summary shows
/// what it configures.
#[test]
fn example_config_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let config = Config::load(&path).unwrap();
    assert_eq!(config.projects.len(), 1);
    assert_eq!(config.projects[0].functions.len(), 3);
    let summary = config.summary();
    assert!(summary.contains("interval 1m"), "{summary}");
    assert!(
        summary.contains(":orders:order-processor:!prod"),
        "{summary}"
    );
    assert!(
        summary.contains(
            "aksk (access key from env HUAWEICLOUD_SDK_AK, secret key from env HUAWEICLOUD_SDK_SK)"
        ),
        "{summary}"
    );
}

/// A missing file is named in the error.
#[test]
fn missing_file_is_named() {
    let err = Config::load(Path::new("/nonexistent/fge.toml")).unwrap_err();
    assert!(
        err.to_string().starts_with("/nonexistent/fge.toml: "),
        "{err}"
    );
}
