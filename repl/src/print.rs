//! Printing results: aligned tables, JSON lines or CSV. In JSON and CSV modes stdout carries
//! only result rows; messages go to stderr.

use std::io::Write;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch as Batch;
use planner::session::render::{cell_text, json_string, json_value};
use planner::RowSet;

use crate::OutputMode;

/// Prints results in one mode.
pub struct Printer {
    mode: OutputMode,
    widths: Vec<usize>,
    rows_in_stream: u64,
    /// A push query's header waits for its first rows, to size the columns.
    pending_header: Option<SchemaRef>,
}

impl Printer {
    /// A printer for `mode`.
    pub fn new(mode: OutputMode) -> Self {
        Printer { mode, widths: Vec::new(), rows_in_stream: 0, pending_header: None }
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
        let mut out = std::io::stdout().lock();
        match self.mode {
            OutputMode::Table => {
                let cells: Vec<Vec<String>> = rs.batches.iter().flat_map(|b| table_cells(b)).collect();
                let mut widths: Vec<usize> = rs.schema.fields().iter().map(|f| f.name().chars().count()).collect();
                for r in &cells {
                    for (w, c) in widths.iter_mut().zip(r) {
                        *w = (*w).max(c.chars().count());
                    }
                }
                let _ = writeln!(out, "{}", rule(&widths));
                let names: Vec<String> = rs.schema.fields().iter().map(|f| f.name().clone()).collect();
                let _ = writeln!(out, "{}", line(&widths, &names));
                let _ = writeln!(out, "{}", rule(&widths));
                for r in &cells {
                    let _ = writeln!(out, "{}", line(&widths, r));
                }
                let _ = writeln!(out, "{}", rule(&widths));
            }
            OutputMode::Json => {
                for b in &rs.batches {
                    write_json(&mut out, b, &rs.schema);
                }
            }
            OutputMode::Csv => {
                write_csv_header(&mut out, &rs.schema);
                for b in &rs.batches {
                    write_csv(&mut out, b);
                }
            }
        }
        let _ = out.flush();
    }

    /// The start of a push query's rows.
    pub fn stream_start(&mut self, schema: &SchemaRef) {
        self.rows_in_stream = 0;
        self.widths = schema.fields().iter().map(|f| f.name().chars().count()).collect();
        match self.mode {
            OutputMode::Table => self.pending_header = Some(schema.clone()),
            OutputMode::Csv => write_csv_header(&mut std::io::stdout().lock(), schema),
            OutputMode::Json => {}
        }
    }

    fn table_header(&mut self, first: Option<&[Vec<String>]>) {
        let Some(schema) = self.pending_header.take() else { return };
        for r in first.unwrap_or_default() {
            for (w, c) in self.widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", rule(&self.widths));
        let _ = writeln!(out, "{}", line(&self.widths, &names));
        let _ = writeln!(out, "{}", rule(&self.widths));
    }

    /// Rows of a push query as they arrive.
    pub fn stream_batch(&mut self, b: &Batch) {
        self.rows_in_stream += b.num_rows() as u64;
        let cells = if self.mode == OutputMode::Table { table_cells(b) } else { Vec::new() };
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
            OutputMode::Json => write_json(&mut out, b, &b.schema()),
            OutputMode::Csv => write_csv(&mut out, b),
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

fn table_cells(b: &Batch) -> Vec<Vec<String>> {
    (0..b.num_rows())
        .map(|r| b.columns().iter().map(|c| cell_text(c, r).unwrap_or_else(|| "null".into())).collect())
        .collect()
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

fn write_json(out: &mut impl Write, b: &Batch, schema: &SchemaRef) {
    for r in 0..b.num_rows() {
        let mut s = String::from("{");
        for (i, f) in schema.fields().iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            json_string(f.name(), &mut s);
            s.push(':');
            json_value(b.column(i), r, &mut s);
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

fn write_csv_header(out: &mut impl Write, schema: &SchemaRef) {
    let names: Vec<String> = schema.fields().iter().map(|f| csv_field(f.name())).collect();
    let _ = writeln!(out, "{}", names.join(","));
}

fn write_csv(out: &mut impl Write, b: &Batch) {
    for r in 0..b.num_rows() {
        let cells: Vec<String> = b.columns().iter().map(|c| cell_text(c, r).map(|s| csv_field(&s)).unwrap_or_default()).collect();
        let _ = writeln!(out, "{}", cells.join(","));
    }
}
