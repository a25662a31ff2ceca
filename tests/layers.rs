//! The layers point one way (docs/architecture.md), and every file can be read in one
//! sitting: checked on the source tree itself, so a change that breaks either fails here.

use std::path::{Path, PathBuf};

/// Longest a file under `src/` may be, tests included.
const MAX_LINES: usize = 900;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The code lines of `file` (comments left out) that mention one of `modules`.
fn imports_of(file: &Path, modules: &[&str]) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .filter(|l| modules.iter().any(|m| l.contains(&format!("crate::{m}"))))
        .map(|l| format!("{}: {}", file.display(), l.trim()))
        .collect()
}

#[test]
fn layers_point_one_way() {
    let rules: [(&str, &[&str]); 4] = [
        (
            "model",
            &[
                "analysis",
                "charts",
                "components",
                "pages",
                "api",
                "app",
                "server",
                "site",
            ],
        ),
        (
            "analysis",
            &[
                "charts",
                "components",
                "pages",
                "api",
                "app",
                "server",
                "site",
            ],
        ),
        (
            "charts",
            &["components", "pages", "api", "app", "server", "site"],
        ),
        ("server", &["components", "pages", "api", "app", "site"]),
    ];
    let mut broken = Vec::new();
    for (layer, forbidden) in rules {
        let mut files = Vec::new();
        rust_files(&src().join(layer), &mut files);
        assert!(!files.is_empty(), "no files in src/{layer}");
        for f in files {
            broken.extend(imports_of(&f, forbidden));
        }
    }
    assert!(
        broken.is_empty(),
        "imports against the layers:\n{}",
        broken.join("\n")
    );
}

#[test]
fn every_file_reads_in_one_sitting() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > MAX_LINES).then(|| format!("{}: {n} lines", f.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "longer than {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}
