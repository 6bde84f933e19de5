//! Printing results: aligned tables, JSON lines or CSV. In JSON and CSV modes stdout carries
//! only result rows; messages go to stderr.

use std::io::Write;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch as Batch;
use planner::session::render::{cell_text, json_string, json_value};
use planner::RowSet;

use crate::OutputMode;

/// One row as printed: per column its text (`None` for null) and its JSON value. Results of
/// the embedded engine and of a server (`--server`) both become these, so they print the same.
#[derive(Debug, Clone, PartialEq)]
pub struct PrintRow {
    /// Text of each value (tables, CSV).
    pub text: Vec<Option<String>>,
    /// JSON of each value (`--output json`).
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
    /// A push query's header waits for its first rows, to size the columns.
    pending_header: bool,
}

impl Printer {
    /// A printer for `mode`.
    pub fn new(mode: OutputMode) -> Self {
        Printer { mode, widths: Vec::new(), rows_in_stream: 0, names: Vec::new(), pending_header: false }
    }

    /// A status message.
    pub fn message(&mut self, m: &str) {
        if m.is_empty() {
            return;
        }
        match self.mode {
            OutputMode::Table => println!("{m}"),
            _ => eprintln!("{m}"),
        }
    }

    /// A finite result.
    pub fn rows(&mut self, rs: &RowSet) {
        let rows: Vec<PrintRow> = rs.batches.iter().flat_map(batch_rows).collect();
        self.print_rows(&names_of(&rs.schema), &rows);
    }

    /// A finite result given as printable rows.
    pub fn print_rows(&mut self, names: &[String], rows: &[PrintRow]) {
        let mut out = std::io::stdout().lock();
        match self.mode {
            OutputMode::Table => {
                let cells: Vec<Vec<String>> = rows.iter().map(table_cells).collect();
                let mut widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
                for r in &cells {
                    for (w, c) in widths.iter_mut().zip(r) {
                        *w = (*w).max(c.chars().count());
                    }
                }
                let _ = writeln!(out, "{}", rule(&widths));
                let _ = writeln!(out, "{}", line(&widths, names));
                let _ = writeln!(out, "{}", rule(&widths));
                for r in &cells {
                    let _ = writeln!(out, "{}", line(&widths, r));
                }
                let _ = writeln!(out, "{}", rule(&widths));
            }
            OutputMode::Json => write_json(&mut out, names, rows),
            OutputMode::Csv => {
                write_csv_header(&mut out, names);
                write_csv(&mut out, rows);
            }
        }
        let _ = out.flush();
    }

    /// The start of a push query's rows.
    pub fn stream_start(&mut self, schema: &SchemaRef) {
        self.stream_start_names(names_of(schema));
    }

    /// The start of a push query's rows, given its column names.
    pub fn stream_start_names(&mut self, names: Vec<String>) {
        self.rows_in_stream = 0;
        self.widths = names.iter().map(|n| n.chars().count()).collect();
        self.names = names;
        match self.mode {
            OutputMode::Table => self.pending_header = true,
            OutputMode::Csv => write_csv_header(&mut std::io::stdout().lock(), &self.names),
            OutputMode::Json => {}
        }
    }

    fn table_header(&mut self, first: Option<&[Vec<String>]>) {
        if !std::mem::take(&mut self.pending_header) {
            return;
        }
        for r in first.unwrap_or_default() {
            for (w, c) in self.widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", rule(&self.widths));
        let _ = writeln!(out, "{}", line(&self.widths, &self.names));
        let _ = writeln!(out, "{}", rule(&self.widths));
    }

    /// Rows of a push query as they arrive.
    pub fn stream_batch(&mut self, b: &Batch) {
        self.stream_rows(&batch_rows(b));
    }

    /// Rows of a push query as they arrive, given as printable rows.
    pub fn stream_rows(&mut self, rows: &[PrintRow]) {
        self.rows_in_stream += rows.len() as u64;
        let cells: Vec<Vec<String>> = if self.mode == OutputMode::Table { rows.iter().map(table_cells).collect() } else { Vec::new() };
        if self.mode == OutputMode::Table {
            self.table_header(Some(&cells));
        }
        let mut out = std::io::stdout().lock();
        match self.mode {
            OutputMode::Table => {
                for r in cells {
                    let _ = writeln!(out, "{}", line(&self.widths, &r));
                }
            }
            OutputMode::Json => write_json(&mut out, &self.names, rows),
            OutputMode::Csv => write_csv(&mut out, rows),
        }
        let _ = out.flush();
    }

    /// The end of a push query.
    pub fn stream_end(&mut self, interrupted: bool) {
        if self.mode == OutputMode::Table {
            self.table_header(None);
            println!("{}", rule(&self.widths));
        }
        let msg = if interrupted { "Query terminated" } else { "Limit Reached" };
        self.message(msg);
    }
}

fn table_cells(r: &PrintRow) -> Vec<String> {
    r.text.iter().map(|c| c.clone().unwrap_or_else(|| "null".into())).collect()
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

fn write_json(out: &mut impl Write, names: &[String], rows: &[PrintRow]) {
    for r in rows {
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
        let _ = writeln!(out, "{s}");
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_csv_header(out: &mut impl Write, names: &[String]) {
    let names: Vec<String> = names.iter().map(|n| csv_field(n)).collect();
    let _ = writeln!(out, "{}", names.join(","));
}

fn write_csv(out: &mut impl Write, rows: &[PrintRow]) {
    for r in rows {
        let cells: Vec<String> = r.text.iter().map(|c| c.as_deref().map(csv_field).unwrap_or_default()).collect();
        let _ = writeln!(out, "{}", cells.join(","));
    }
}
