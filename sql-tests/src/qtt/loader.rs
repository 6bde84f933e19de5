//! Finding and reading QTT files, and the metadata beside the corpus: INDEX.txt (a category per
//! file) and tiers/*.txt (a tier per case, in bring-up order).
//!
//! Any directory of files in QTT format works; the metadata is optional (cases then have the
//! category `uncategorized` and the tier `-`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::expand::expand;
use super::json::{self, Json};
use super::model::{Case, Suite};

/// A file's cases, plus the tests that could not be read.
#[derive(Debug, Clone)]
pub struct TestFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its file name, the first part of case ids.
    pub name: String,
    /// Its corpus.
    pub suite: Suite,
    /// Every expanded case, in file order.
    pub cases: Vec<Case>,
    /// `(test name, problem)` for tests that could not be read.
    pub broken: Vec<(String, String)>,
}

/// Every `.json` file under the given files and directories, sorted, without duplicates.
///
/// # Errors
/// When a path does not exist.
pub fn find_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))?.flatten() {
                    let path = e.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.extension().is_some_and(|x| x == "json") {
                        out.push(path);
                    }
                }
            }
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            bail!("no such file or directory: {}", p.display());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Reads and expands one file.
///
/// # Errors
/// When the file cannot be read or is not a QTT document (`{"tests": [...]}`).
pub fn load_file(path: &Path) -> Result<TestFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let doc = json::parse(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
    let tests = doc.get("tests").and_then(Json::as_array).with_context(|| format!("{} has no \"tests\" array", path.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let in_rest_dir = path.components().any(|c| c.as_os_str().to_string_lossy().starts_with("rest-query-validation"));
    let rest_fields = tests.iter().any(|t| t.get("responses").is_some() || t.get("expectedError").is_some());
    let suite = if in_rest_dir || rest_fields { Suite::Rest } else { Suite::Qtt };
    let mut cases: Vec<Case> = Vec::new();
    let mut broken = Vec::new();
    for t in tests {
        for c in expand(&name, suite, t) {
            match c {
                Ok(mut c) => {
                    // Names must be unique within a file to serve as ids.
                    if cases.iter().any(|o| o.name == c.name) {
                        let mut k = 2;
                        while cases.iter().any(|o| o.name == format!("{} #{k}", c.name)) {
                            k += 1;
                        }
                        c.name = format!("{} #{k}", c.name);
                    }
                    cases.push(c)
                }
                Err(e) => broken.push(e),
            }
        }
    }
    Ok(TestFile { path: path.to_path_buf(), name, suite, cases, broken })
}

/// Categories and tiers from the metadata beside a corpus.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// File name -> category (INDEX.txt's last column).
    pub categories: HashMap<String, String>,
    /// Case id -> tier (`T0`, `E`, ...), from tiers/*.txt.
    pub tiers: HashMap<String, String>,
}

impl Meta {
    /// Reads INDEX.txt and tiers/ from `dir` (missing files are fine).
    pub fn load(dir: &Path) -> Meta {
        let mut m = Meta::default();
        if let Ok(index) = std::fs::read_to_string(dir.join("INDEX.txt")) {
            for line in index.lines().filter(|l| !l.starts_with('#')) {
                let cols: Vec<&str> = line.split('\t').collect();
                if cols.len() >= 7 {
                    let file = cols[0].rsplit('/').next().unwrap_or(cols[0]);
                    m.categories.insert(file.to_string(), cols[cols.len() - 1].to_string());
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(dir.join("tiers")) {
            let mut files: Vec<PathBuf> =
                entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "txt")).collect();
            files.sort();
            for f in files {
                let tier = f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                for line in std::fs::read_to_string(&f).unwrap_or_default().lines() {
                    if !line.starts_with('#') && !line.trim().is_empty() {
                        m.tiers.insert(line.to_string(), tier.clone());
                    }
                }
            }
        }
        m
    }

    /// Looks for INDEX.txt in the given paths and up to three of their parents.
    pub fn discover(paths: &[PathBuf]) -> Meta {
        for p in paths {
            let mut dir = std::fs::canonicalize(p).ok();
            for _ in 0..4 {
                let Some(d) = dir else { break };
                if d.join("INDEX.txt").is_file() {
                    return Meta::load(&d);
                }
                dir = d.parent().map(Path::to_path_buf);
            }
        }
        Meta::default()
    }

    /// The category of a file.
    pub fn category(&self, file: &str) -> String {
        self.categories.get(file).cloned().unwrap_or_else(|| "uncategorized".into())
    }

    /// The tier of a case (`-` when no tier lists it).
    pub fn tier(&self, id: &str) -> String {
        self.tiers.get(id).cloned().unwrap_or_else(|| "-".into())
    }
}
