//! README and docs/: the README stays a newcomer's page (at most 16 KB),
//! every relative link names a file that exists and an anchor that one of
//! its headings makes, and every flag the documentation names is one the
//! binary's `--help` lists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const BIN: &str = env!("CARGO_BIN_EXE_functiongraph_exporter");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The documents checked: the README and everything in docs/.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![root().join("README.md")];
    let mut dir: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    dir.sort();
    docs.extend(dir);
    docs
}

/// Markdown without its fenced code blocks.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to
/// hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(path: &Path) -> BTreeSet<String> {
    prose(&std::fs::read_to_string(path).unwrap())
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

#[test]
fn readme_is_at_most_16_kb() {
    let size = std::fs::metadata(root().join("README.md")).unwrap().len();
    assert!(size <= 16 * 1024, "README.md is {size} bytes");
}

#[test]
fn relative_links_resolve() {
    let mut broken = Vec::new();
    for doc in documents() {
        let text = prose(&std::fs::read_to_string(&doc).unwrap());
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let Some(link) = rest.split(')').next() else {
                continue;
            };
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() {
                doc.clone()
            } else {
                doc.parent().unwrap().join(file)
            };
            if !target.exists() {
                broken.push(format!("{}: {link}: no such file", doc.display()));
            } else if !fragment.is_empty()
                && target.extension().is_some_and(|e| e == "md")
                && !anchors(&target).contains(fragment)
            {
                broken.push(format!("{}: {link}: no such heading", doc.display()));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// Every `--flag` the documents name (in prose or examples) is accepted.
#[test]
fn documented_flags_exist() {
    let help = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let mut unknown = BTreeSet::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for (i, _) in text.match_indices("--") {
            let before = text[..i].chars().next_back().unwrap_or(' ');
            let flag: String = text[i + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                .collect();
            let flag = flag.trim_end_matches(['.', '-']);
            // `--flag` of this binary: after a space, backtick or bracket,
            // starting with a letter; other programs' flags (cargo, docker,
            // kubectl, promtool, install) are listed here.
            if !matches!(before, ' ' | '`' | '(' | '[' | '"')
                || !flag.starts_with(|c: char| c.is_ascii_lowercase())
            {
                continue;
            }
            const OTHERS: &[&str] = &[
                "release",
                "locked",
                "build-arg",
                "rm",
                "read-only",
                "from-file",
                "example",
                "enable-feature",
                "compressed",
                "now",
                "no-fail-fast",
                "max_total_time",
                "dict",
                "build",
                "short",
            ];
            if !OTHERS.contains(&flag) && !help.contains(&format!("--{flag}")) {
                unknown.insert(format!("--{flag} ({})", doc.display()));
            }
        }
    }
    assert!(unknown.is_empty(), "not in --help: {unknown:?}");
}
