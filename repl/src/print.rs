//! Printing results: aligned tables, JSON lines or CSV. In JSON and CSV modes stdout carries
//! only result rows; messages go to stderr.
//!
//! Tables render values as ksqlDB's CLI does: strings, timestamps, dates and times bare,
//! structs and maps as `{C=v1, D=5}`, arrays as `[2, 3]`. Finite results size their columns by
//! their content; a push query's columns have fixed widths from the terminal's width (as
//! ksqlDB's CLI has them; values longer than their column wrap onto the next lines), because
//! its rows are printed as they arrive. `PRINT` prints ksqlDB's `rowtime: ..., key: ...,
//! value: ..., partition: ...` lines. With `SPOOL file`, everything printed also goes to the
//! file, with each statement before its output.

use std::fs::File;
use std::io::Write;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch as Batch;
use planner::session::render::{cell_text, json_string, json_value};
use planner::RowSet;

use crate::OutputMode;

/// Terminal width assumed when `COLUMNS` does not say (push-query column widths).
const DEFAULT_WIDTH: usize = 80;
/// The narrowest a push query's column gets.
const MIN_COLUMN: usize = 12;

/// One row as printed: per column its text (`None` for null) and its JSON value. Results of
/// the embedded engine and of a server (`--server`) both become these, so they print the same.
#[derive(Debug, Clone, PartialEq)]
pub struct PrintRow {
    /// Text of each value (CSV).
    pub text: Vec<Option<String>>,
    /// JSON of each value (`--output json`, and the source of the table text).
    pub json: Vec<String>,
}

/// The rows of a batch.
pub fn batch_rows(b: &Batch) -> Vec<PrintRow> {
    (0..b.num_rows())
        .map(|r| PrintRow {
            text: b.columns().iter().map(|c| cell_text(c, r)).collect(),
            json: b
                .columns()
                .iter()
                .map(|c| {
                    let mut s = String::new();
                    json_value(c, r, &mut s);
                    s
                })
                .collect(),
        })
        .collect()
}

fn names_of(schema: &SchemaRef) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

/// Prints results in one mode.
pub struct Printer {
    mode: OutputMode,
    widths: Vec<usize>,
    rows_in_stream: u64,
    /// The column names of the push query being printed.
    names: Vec<String>,
    /// A push query's header waits for its first rows (or its end).
    pending_header: bool,
    /// The stream being printed is a PRINT of a topic.
    print_lines: bool,
    /// `SPOOL`: the file that gets a copy of the output.
    spool: Option<(String, File)>,
}

impl Printer {
    /// A printer for `mode`.
    pub fn new(mode: OutputMode) -> Self {
        Printer {
            mode,
            widths: Vec::new(),
            rows_in_stream: 0,
            names: Vec::new(),
            pending_header: false,
            print_lines: false,
            spool: None,
        }
    }

    /// The output mode.
    pub fn mode(&self) -> OutputMode {
        self.mode
    }

    /// Changes the output mode (the REPL's `output` command).
    pub fn set_mode(&mut self, mode: OutputMode) {
        self.mode = mode;
    }

    /// Starts copying output to `path` (`SPOOL path`), replacing an earlier spool.
    pub fn spool_to(&mut self, path: &str) -> std::io::Result<()> {
        let f = File::create(path)?;
        self.spool = Some((path.to_string(), f));
        Ok(())
    }

    /// Stops the spool (`SPOOL OFF`); the file it wrote, if any.
    pub fn spool_off(&mut self) -> Option<String> {
        self.spool.take().map(|(p, _)| p)
    }

    /// Records a statement in the spool file (`ksql> statement`).
    pub fn spool_statement(&mut self, text: &str) {
        if let Some((_, f)) = &mut self.spool {
            let _ = writeln!(f, "ksql> {text}");
        }
    }

    /// Writes `s` (a line) to stdout or stderr, and to the spool.
    fn out(&mut self, s: &str, to_stderr: bool) {
        if to_stderr {
            eprintln!("{s}");
        } else {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{s}");
            let _ = o.flush();
        }
        if let Some((_, f)) = &mut self.spool {
            let _ = writeln!(f, "{s}");
        }
    }

    /// A status message.
    pub fn message(&mut self, m: &str) {
        if m.is_empty() {
            return;
        }
        let to_stderr = self.mode != OutputMode::Table;
        for line in m.lines() {
            self.out(line, to_stderr);
        }
    }

    /// A finite result.
    pub fn rows(&mut self, rs: &RowSet) {
        let rows: Vec<PrintRow> = rs.batches.iter().flat_map(batch_rows).collect();
        self.print_rows(&names_of(&rs.schema), &rows);
    }

    /// A finite result given as printable rows.
    pub fn print_rows(&mut self, names: &[String], rows: &[PrintRow]) {
        let mut lines = Vec::new();
        match self.mode {
            OutputMode::Table => {
                let cells: Vec<Vec<String>> = rows.iter().map(table_cells).collect();
                let mut widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
                for r in &cells {
                    for (w, c) in widths.iter_mut().zip(r) {
                        *w = (*w).max(c.chars().count());
                    }
                }
                lines.push(rule(&widths));
                lines.push(line(&widths, names));
                lines.push(rule(&widths));
                for r in &cells {
                    lines.push(line(&widths, r));
                }
                lines.push(rule(&widths));
            }
            OutputMode::Json => lines.extend(json_lines(names, rows)),
            OutputMode::Csv => {
                lines.push(csv_header(names));
                lines.extend(csv_lines(rows));
            }
        }
        for l in lines {
            self.out(&l, false);
        }
    }

    /// The start of a push query's rows.
    pub fn stream_start(&mut self, schema: &SchemaRef) {
        let print = schema.metadata().get(planner::session::PRINT_METADATA).is_some();
        self.stream_start_names(names_of(schema), print);
    }

    /// The start of a push query's rows, given its column names; `print` for `PRINT`.
    pub fn stream_start_names(&mut self, names: Vec<String>, print: bool) {
        self.rows_in_stream = 0;
        self.print_lines = print;
        let total = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).unwrap_or(DEFAULT_WIDTH);
        let n = names.len().max(1);
        // Each column takes its share of the line: `|` plus a space either side.
        let share = (total.saturating_sub(1) / n).saturating_sub(3).max(MIN_COLUMN);
        self.widths = names.iter().map(|name| name.chars().count().max(share)).collect();
        self.names = names;
        match self.mode {
            OutputMode::Table => self.pending_header = !print,
            OutputMode::Csv => {
                let h = csv_header(&self.names);
                self.out(&h, false);
            }
            OutputMode::Json => {}
        }
    }

    fn table_header(&mut self) {
        if !std::mem::take(&mut self.pending_header) {
            return;
        }
        let (r, h) = (rule(&self.widths), line(&self.widths, &self.names));
        self.out(&r, false);
        self.out(&h, false);
        self.out(&r, false);
    }

    /// Rows of a push query as they arrive.
    pub fn stream_batch(&mut self, b: &Batch) {
        self.stream_rows(&batch_rows(b));
    }

    /// Rows of a push query as they arrive, given as printable rows.
    pub fn stream_rows(&mut self, rows: &[PrintRow]) {
        self.rows_in_stream += rows.len() as u64;
        let lines: Vec<String> = match self.mode {
            OutputMode::Table if self.print_lines => rows.iter().map(|r| print_line(&self.names, r)).collect(),
            OutputMode::Table => {
                self.table_header();
                rows.iter().flat_map(|r| wrapped_lines(&self.widths, &table_cells(r))).collect()
            }
            OutputMode::Json => json_lines(&self.names, rows),
            OutputMode::Csv => csv_lines(rows),
        };
        for l in lines {
            self.out(&l, false);
        }
    }

    /// Rows printed since the push query started.
    pub fn streamed_rows(&self) -> u64 {
        self.rows_in_stream
    }

    /// The end of a push query: Ctrl-C (`interrupted`), its LIMIT (`limit_reached`), or the end
    /// of its input (a finite scan: nothing more is said).
    pub fn stream_end(&mut self, interrupted: bool, limit_reached: bool) {
        if self.mode == OutputMode::Table && !self.print_lines {
            self.table_header();
            let r = rule(&self.widths);
            self.out(&r, false);
        }
        if interrupted {
            self.message(if self.print_lines { "Topic printing ceased" } else { "Query terminated" });
        } else if limit_reached {
            self.message("Limit Reached");
        }
    }
}

/// A PRINT row (ROWTIME, KEY, VALUE, PARTITION, as the session gives them) as ksqlDB's line.
fn print_line(names: &[String], r: &PrintRow) -> String {
    let get = |col: &str| {
        names
            .iter()
            .position(|n| n == col)
            .and_then(|i| r.text.get(i).cloned().flatten())
            .unwrap_or_else(|| "<null>".to_string())
    };
    format!("rowtime: {}, key: {}, value: {}, partition: {}", get("ROWTIME"), get("KEY"), get("VALUE"), get("PARTITION"))
}

fn table_cells(r: &PrintRow) -> Vec<String> {
    r.json.iter().map(|j| cli_text(j)).collect()
}

/// A value (as JSON text) as ksqlDB's CLI shows it: strings bare, objects `{K=v, K2=v}`,
/// arrays `[a, b]`, numbers as written, null as `null`.
pub fn cli_text(json: &str) -> String {
    let mut out = String::new();
    let mut p = JsonText { s: json.as_bytes(), i: 0 };
    if p.value(&mut out).is_none() || p.i != p.s.len() {
        return json.to_string();
    }
    out
}

/// A small reader of JSON text that writes ksqlDB's CLI rendering of the value it reads
/// (numbers keep their text, so DECIMAL scales survive).
struct JsonText<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonText<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn value(&mut self, out: &mut String) -> Option<()> {
        self.ws();
        match *self.s.get(self.i)? {
            b'"' => out.push_str(&self.string()?),
            b'{' => {
                self.i += 1;
                out.push('{');
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    out.push('}');
                    return Some(());
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    out.push_str(&k);
                    out.push('=');
                    self.ws();
                    (self.s.get(self.i) == Some(&b':')).then_some(())?;
                    self.i += 1;
                    self.value(out)?;
                    self.ws();
                    match *self.s.get(self.i)? {
                        b',' => {
                            self.i += 1;
                            out.push_str(", ");
                        }
                        b'}' => {
                            self.i += 1;
                            out.push('}');
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                out.push('[');
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    out.push(']');
                    return Some(());
                }
                loop {
                    self.value(out)?;
                    self.ws();
                    match *self.s.get(self.i)? {
                        b',' => {
                            self.i += 1;
                            out.push_str(", ");
                        }
                        b']' => {
                            self.i += 1;
                            out.push(']');
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len() && !matches!(self.s[self.i], b',' | b'}' | b']') && !self.s[self.i].is_ascii_whitespace() {
                    self.i += 1;
                }
                out.push_str(std::str::from_utf8(&self.s[start..self.i]).ok()?);
            }
        }
        Some(())
    }

    fn string(&mut self) -> Option<String> {
        (self.s.get(self.i) == Some(&b'"')).then_some(())?;
        let start = self.i;
        self.i += 1;
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    return serde_json::from_slice::<String>(&self.s[start..self.i]).ok();
                }
                _ => self.i += 1,
            }
        }
        None
    }
}

fn rule(widths: &[usize]) -> String {
    let mut s = String::from("+");
    for w in widths {
        s.push_str(&"-".repeat(w + 2));
        s.push('+');
    }
    s
}

fn line(widths: &[usize], cells: &[String]) -> String {
    let mut s = String::from("|");
    for (w, c) in widths.iter().zip(cells) {
        let pad = w.saturating_sub(c.chars().count());
        s.push(' ');
        s.push_str(c);
        s.push_str(&" ".repeat(pad + 1));
        s.push('|');
    }
    s
}

/// A row in fixed-width columns: cells longer than their column continue on the next lines.
fn wrapped_lines(widths: &[usize], cells: &[String]) -> Vec<String> {
    let pieces: Vec<Vec<String>> = widths
        .iter()
        .zip(cells)
        .map(|(w, c)| {
            let chars: Vec<char> = c.chars().collect();
            if chars.is_empty() {
                return vec![String::new()];
            }
            chars.chunks((*w).max(1)).map(|p| p.iter().collect()).collect()
        })
        .collect();
    let height = pieces.iter().map(Vec::len).max().unwrap_or(1);
    (0..height)
        .map(|i| {
            let row: Vec<String> = pieces.iter().map(|p| p.get(i).cloned().unwrap_or_default()).collect();
            line(widths, &row)
        })
        .collect()
}

fn json_lines(names: &[String], rows: &[PrintRow]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            let mut s = String::from("{");
            for (i, (name, v)) in names.iter().zip(&r.json).enumerate() {
                if i > 0 {
                    s.push(',');
                }
                json_string(name, &mut s);
                s.push(':');
                s.push_str(v);
            }
            s.push('}');
            s
        })
        .collect()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_header(names: &[String]) -> String {
    names.iter().map(|n| csv_field(n)).collect::<Vec<_>>().join(",")
}

fn csv_lines(rows: &[PrintRow]) -> Vec<String> {
    rows.iter()
        .map(|r| r.text.iter().map(|c| c.as_deref().map(csv_field).unwrap_or_default()).collect::<Vec<_>>().join(","))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_as_ksqldb_cli() {
        assert_eq!(cli_text(r#"{"C":"v1","D":5}"#), "{C=v1, D=5}");
        assert_eq!(cli_text("[2,3]"), "[2, 3]");
        assert_eq!(cli_text(r#""2019-07-09T01:00:00.000""#), "2019-07-09T01:00:00.000");
        assert_eq!(cli_text(r#"{"A":[1.10,null],"B":{"X":"a \"q\""}}"#), r#"{A=[1.10, null], B={X=a "q"}}"#);
        assert_eq!(cli_text("[]"), "[]");
        assert_eq!(cli_text("{}"), "{}");
        assert_eq!(cli_text("null"), "null");
        assert_eq!(cli_text("12.50"), "12.50");
    }

    #[test]
    fn long_cells_wrap() {
        let l = wrapped_lines(&[3, 2], &["abcdefg".into(), "x".into()]);
        assert_eq!(l, vec!["| abc | x  |", "| def |    |", "| g   |    |"]);
    }
}
