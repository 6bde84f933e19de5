//! Reporting: failing cases, pass rates per file, category, tier and corpus (plain positive and
//! plain error cases apart), the most common failure reasons, the JSON results file, and the
//! known-failures ratchet (`file::case<TAB>reason`, sorted; it may only shrink).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use super::model::Suite;
use super::{CaseResult, Status};

/// A case with its metadata and result.
#[derive(Debug, Clone)]
pub struct Row {
    /// `file::name`.
    pub id: String,
    /// File name.
    pub file: String,
    /// Corpus.
    pub suite: Suite,
    /// Plain (counts toward the pass rates).
    pub plain: bool,
    /// Error case.
    pub error_case: bool,
    /// Tier (`-` when unlisted).
    pub tier: String,
    /// Category of the file.
    pub category: String,
    /// The result.
    pub result: CaseResult,
}

impl Row {
    /// True when it passed.
    pub fn passed(&self) -> bool {
        self.result.status == Status::Pass
    }
}

/// Passed and total counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Passed.
    pub passed: usize,
    /// Total.
    pub total: usize,
}

impl Tally {
    fn add(&mut self, passed: bool) {
        self.total += 1;
        self.passed += usize::from(passed);
    }

    /// `passed/total (pct%)`, or `-` when empty.
    pub fn text(&self) -> String {
        if self.total == 0 {
            return "-".into();
        }
        format!("{}/{} ({:.1}%)", self.passed, self.total, 100.0 * self.passed as f64 / self.total as f64)
    }
}

/// Plain positive and plain error tallies of a group of rows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rates {
    /// Plain positive cases.
    pub positive: Tally,
    /// Plain error cases (error raised at the right statement).
    pub error: Tally,
    /// Plain error cases whose message also matched.
    pub message: Tally,
}

impl Rates {
    /// Number of plain cases counted.
    pub fn plain_cases(&self) -> usize {
        self.positive.total + self.error.total
    }

    fn add(&mut self, r: &Row) {
        if !r.plain {
            return;
        }
        if r.error_case {
            self.error.add(r.passed());
            self.message.add(r.passed() && r.result.message_matched == Some(true));
        } else {
            self.positive.add(r.passed());
        }
    }
}

/// Rates grouped by a key.
pub fn rates_by<K: Ord>(rows: &[Row], key: impl Fn(&Row) -> K) -> BTreeMap<K, Rates> {
    let mut m: BTreeMap<K, Rates> = BTreeMap::new();
    for r in rows {
        m.entry(key(r)).or_default().add(r);
    }
    m
}

/// The class a failure reason is counted under: the reason without the case's own names,
/// values and numbers (function names are kept: they say what to build).
pub fn reason_class(reason: &str) -> String {
    let r = reason.trim();
    if r.is_empty() {
        return String::new();
    }
    // Output mismatches: which part of the record differed.
    if let Some(pos) = r.find(" records, got ") {
        let got = r[pos + 14..].split(|c: char| !c.is_ascii_digit()).next().unwrap_or("");
        return if got == "0" { "output: no records".into() } else { "output: record count differs".into() };
    }
    if let Some(i) = r.find(": record ") {
        // "TOPIC: record 2 of 3: value.A[1]: expected ..."
        let after = r[i + 9..].split_once(": ").map_or("", |(_, rest)| rest);
        let part = after.split(['.', '[', ':', ' ']).next().unwrap_or("");
        let how = if after.contains(": no member ") {
            "has a member missing (names differ)"
        } else if after.contains(": expected members [") {
            "has other members"
        } else {
            "differs"
        };
        return format!("output: {part} {how}");
    }
    if r.starts_with("expected an error (") && r.ends_with("none raised") {
        return "no error raised (an error was expected)".into();
    }
    if let Some(rest) = r.strip_prefix("post: ") {
        let what = rest.split(" of ").next().unwrap_or("");
        return format!("post: {}", if what.starts_with("source ") { "source missing" } else { what });
    }
    if let Some(rest) = r.strip_prefix("response ") {
        let what = rest.split_once(": ").map_or("", |(_, w)| w);
        let mut plain = String::new();
        let mut depth = 0;
        for c in what.chars() {
            match c {
                '[' | '{' => depth += 1,
                ']' | '}' => depth -= 1,
                _ if depth == 0 => plain.push(c),
                _ => {}
            }
        }
        let what = plain.split([':', ';', ',', '(']).next().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ");
        return format!("response: {}", generic(&what));
    }
    let r = r.split(" [engine: ").next().unwrap_or(r);
    let (head, msg) = match r.split_once(" failed: ") {
        Some((h, m)) if h.starts_with("statement ") => ("statement failed", m),
        _ => match r.split_once(" (expected at the last): ") {
            Some((_, m)) => ("error at an earlier statement", m),
            None => ("", r),
        },
    };
    let msg = msg.split(" (in statement").next().unwrap_or(msg);
    let mut msg = generic(msg);
    // A trailing list of column names ("... not part of GROUP BY: VALUE").
    if let Some((head, tail)) = msg.rsplit_once(": ") {
        if !tail.is_empty() && tail.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || "_, .`".contains(c)) && tail != "N" {
            msg = format!("{head}: …");
        }
    }
    let msg: String = msg.chars().take(90).collect();
    if head.is_empty() {
        msg
    } else {
        format!("{head}: {msg}")
    }
}

/// Replaces quoted names and numbers with placeholders, keeping function names.
fn generic(msg: &str) -> String {
    let mut out = String::new();
    let c: Vec<char> = msg.chars().collect();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if matches!(ch, '"' | '\'' | '`') {
            let end = c[i + 1..].iter().position(|&x| x == ch).map(|p| i + 1 + p);
            if let Some(end) = end {
                let keep = out.ends_with("function ") || out.ends_with("functions with the name ");
                if keep {
                    out.extend(&c[i..=end]);
                } else {
                    out.push(ch);
                    out.push('…');
                    out.push(ch);
                }
                i = end + 1;
                continue;
            }
        }
        if ch.is_ascii_digit() && !out.ends_with(|p: char| p.is_alphanumeric() || p == '_') {
            while i < c.len() && c[i].is_ascii_digit() {
                i += 1;
            }
            out.push('N');
            continue;
        }
        out.push(ch);
        i += 1;
    }
    out
}

/// The most common reason classes among failing plain cases, most common first.
pub fn top_reasons(rows: &[Row], n: usize) -> Vec<(String, usize)> {
    let mut m: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.plain && !r.passed()) {
        let class = match r.result.status {
            Status::Timeout => "timeout".to_string(),
            Status::Crash => "crash".to_string(),
            _ => reason_class(&r.result.reason),
        };
        *m.entry(class).or_default() += 1;
    }
    let mut v: Vec<(String, usize)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// The summary printed after the failing cases.
pub fn summary(rows: &[Row], top: usize, label: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\n== per file (all cases; {label} positive; {label} error)");
    for (file, t) in rates_by(rows, |r| r.file.clone()) {
        let all = rows.iter().filter(|r| r.file == file);
        let (p, n) = all.fold((0, 0), |(p, n), r| (p + usize::from(r.passed()), n + 1));
        let _ = writeln!(s, "{file:<58} {p:>4}/{n:<4} {:<20} {}", t.positive.text(), t.error.text());
    }
    for (title, key) in [("category", 0), ("tier", 1)] {
        let _ = writeln!(s, "\n== per {title} ({label} cases): positive | error raised at the right statement | error message matched");
        let by = rates_by(rows, |r| (r.suite, if key == 0 { r.category.clone() } else { r.tier.clone() }));
        for ((suite, k), t) in by.into_iter().filter(|(_, t)| t.plain_cases() > 0) {
            let _ = writeln!(s, "{:<5} {k:<40} {:<22} {:<22} {}", suite.name(), t.positive.text(), t.error.text(), t.message.text());
        }
    }
    let _ = writeln!(s, "\n== per corpus ({label} cases)");
    for (suite, t) in rates_by(rows, |r| r.suite) {
        let _ = writeln!(
            s,
            "{:<5} positive {:<22} error {:<22} error message matched {}",
            suite.name(),
            t.positive.text(),
            t.error.text(),
            t.message.text()
        );
    }
    let _ = writeln!(s, "\n== top failure reasons ({label} cases)");
    for (class, n) in top_reasons(rows, top) {
        let _ = writeln!(s, "{n:>5}  {class}");
    }
    s
}

/// The pass-rate tables and top failure reasons as Markdown (for docs/conformance.md).
pub fn markdown(rows: &[Row], top: usize, label: &str) -> String {
    let mut s = String::new();
    let head = "| positive cases passing | error cases: error at the right statement | error cases: message matched |";
    let _ = writeln!(s, "### Per corpus ({label} cases)\n\n| corpus {head}\n|---|---|---|---|");
    for (suite, t) in rates_by(rows, |r| r.suite) {
        let _ = writeln!(s, "| {} | {} | {} | {} |", suite.name(), t.positive.text(), t.error.text(), t.message.text());
    }
    for (title, by_tier) in [("category", false), ("tier", true)] {
        let _ = writeln!(s, "\n### Per {title} ({label} cases)\n\n| corpus | {title} {head}\n|---|---|---|---|---|");
        let by = rates_by(rows, |r| (r.suite, if by_tier { r.tier.clone() } else { r.category.clone() }));
        for ((suite, k), t) in by.into_iter().filter(|(_, t)| t.plain_cases() > 0) {
            let _ = writeln!(s, "| {} | {k} | {} | {} | {} |", suite.name(), t.positive.text(), t.error.text(), t.message.text());
        }
    }
    let _ = writeln!(s, "\n### Top failure reasons ({label} cases)\n\n| cases | reason |\n|---:|---|");
    for (class, n) in top_reasons(rows, top) {
        let _ = writeln!(s, "| {n} | {} |", class.replace('|', "\\|"));
    }
    s
}

/// Writes every result as a JSON array.
///
/// # Errors
/// When the file cannot be written.
pub fn write_json(path: &Path, rows: &[Row]) -> Result<()> {
    let v: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "file": r.file,
                "case": r.id.split_once("::").map_or("", |(_, c)| c),
                "suite": r.suite.name(),
                "plain": r.plain,
                "error_case": r.error_case,
                "tier": r.tier,
                "category": r.category,
                "status": r.result.status.name(),
                "reason": r.result.reason,
                "reason_class": reason_class(&r.result.reason),
                "message_matched": r.result.message_matched,
                "error": r.result.error,
                "millis": r.result.millis,
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&v)?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

/// The known-failures list: case id -> reason.
pub fn read_known_failures(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (id, reason) = l.split_once('\t').unwrap_or((l, ""));
            (id.to_string(), reason.to_string())
        })
        .collect())
}

/// The list's text for the failing plain cases among `rows`, sorted, keeping the entries of
/// `keep` (cases that did not run this time).
pub fn known_failures_text(rows: &[Row], keep: &BTreeMap<String, String>) -> String {
    let mut m: BTreeMap<String, String> = keep.clone();
    for r in rows.iter().filter(|r| r.plain) {
        m.remove(&r.id);
        if !r.passed() {
            let reason: String = r.result.reason.chars().take(160).collect();
            m.insert(r.id.clone(), reason.replace(['\t', '\n'], " "));
        }
    }
    let mut s = String::new();
    for (id, reason) in m {
        let _ = writeln!(s, "{id}\t{reason}");
    }
    s
}

/// What the ratchet found: failing plain cases not in the list, listed cases that passed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ratchet {
    /// Plain cases that fail but are not listed.
    pub regressions: BTreeSet<String>,
    /// Listed cases that passed: they must be removed from the list.
    pub fixed: BTreeSet<String>,
}

/// Compares results with the list (only cases that ran count).
pub fn ratchet(rows: &[Row], known: &BTreeMap<String, String>) -> Ratchet {
    let mut r = Ratchet::default();
    for row in rows.iter().filter(|r| r.plain) {
        match (row.passed(), known.contains_key(&row.id)) {
            (false, false) => {
                r.regressions.insert(row.id.clone());
            }
            (true, true) => {
                r.fixed.insert(row.id.clone());
            }
            _ => {}
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, plain: bool, error_case: bool, status: Status, reason: &str) -> Row {
        Row {
            id: id.into(),
            file: id.split("::").next().unwrap().into(),
            suite: Suite::Qtt,
            plain,
            error_case,
            tier: "T0".into(),
            category: "c".into(),
            result: CaseResult { status, reason: reason.into(), message_matched: Some(status == Status::Pass), error: None, millis: 1 },
        }
    }

    #[test]
    fn classes_drop_names_but_keep_functions() {
        assert_eq!(reason_class("statement 2 of 2 failed: unknown column \"FOO\" at 12"), "statement failed: unknown column \"…\" at N");
        assert_eq!(reason_class("statement 2 of 2 failed: unknown function \"LPAD\""), "statement failed: unknown function \"LPAD\"");
        assert_eq!(reason_class("OUTPUT: expected 3 records, got 0 [engine: x]"), "output: no records");
        assert_eq!(
            reason_class("T1: expected 2 records, got 3; first difference at record 1: key: expected 1, got 0"),
            "output: record count differs"
        );
        assert_eq!(reason_class("OUTPUT: record 1 of 3: value.A: expected 1, got 2"), "output: value differs");
        assert_eq!(reason_class("OUTPUT: record 1 of 3: value: no member NAME in {}"), "output: value has a member missing (names differ)");
        assert_eq!(reason_class("OUTPUT: record 1 of 3: key: expected 1, got 2"), "output: key differs");
        assert_eq!(
            reason_class("statement 2 of 2 failed: Non-aggregate SELECT expression(s) not part of GROUP BY: VALUE"),
            "statement failed: Non-aggregate SELECT expression(s) not part of GROUP BY: …"
        );
        assert_eq!(reason_class("expected an error (x: y), none raised"), "no error raised (an error was expected)");
        assert_eq!(reason_class("response 1: row [1] not found, got [2]"), "response: row not found");
        assert_eq!(reason_class("post: schema of OUTPUT: expected A, got B"), "post: schema");
    }

    #[test]
    fn ratchet_finds_regressions_and_fixes() {
        let rows = vec![
            row("a.json::x", true, false, Status::Fail, "boom"),
            row("a.json::y", true, false, Status::Pass, ""),
            row("a.json::z", false, false, Status::Fail, "avro"),
            row("a.json::w", true, true, Status::Timeout, "slow"),
        ];
        let known: BTreeMap<String, String> = [("a.json::y".to_string(), String::new()), ("a.json::w".to_string(), String::new())].into();
        let r = ratchet(&rows, &known);
        assert_eq!(r.regressions, ["a.json::x".to_string()].into());
        assert_eq!(r.fixed, ["a.json::y".to_string()].into());
        let text = known_failures_text(&rows, &[("b.json::q".to_string(), "not run".to_string())].into());
        assert_eq!(text, "a.json::w\tslow\na.json::x\tboom\nb.json::q\tnot run\n");
    }

    #[test]
    fn rates_split_positive_and_error_cases() {
        let rows = vec![
            row("a::1", true, false, Status::Pass, ""),
            row("a::2", true, true, Status::Fail, "x"),
            row("a::3", false, false, Status::Fail, ""),
        ];
        let r = rates_by(&rows, |r| r.suite)[&Suite::Qtt];
        assert_eq!((r.positive.passed, r.positive.total, r.error.passed, r.error.total), (1, 1, 0, 1));
    }
}
