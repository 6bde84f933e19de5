//! The interactive REPL: multi-line statements ending with `;`, history, completion of keywords
//! and of stream, table and topic names, aligned tables, push-query rows printed as they arrive;
//! Ctrl-C cancels a running push query and returns to the prompt. ksqlDB's CLI commands work
//! without a `;`: `help`, `exit`, `history`, `output [TABULAR|JSON|CSV]`, `version`,
//! `server [URL]`, `spool FILE|OFF`, `clear`.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use parking_lot::Mutex;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor, Helper};

use crate::backend::Backend;
use crate::print::Printer;
use crate::OutputMode;

const KEYWORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "GROUP", "BY", "HAVING", "PARTITION", "EMIT", "CHANGES", "FINAL", "LIMIT", "CREATE",
    "STREAM", "TABLE", "AS", "WITH", "INSERT", "INTO", "VALUES", "DROP", "DELETE", "TOPIC", "SHOW", "LIST",
    "STREAMS", "TABLES", "TOPICS", "QUERIES", "PROPERTIES", "FUNCTIONS", "TYPES", "DESCRIBE", "EXTENDED", "PRINT",
    "BEGINNING", "SET", "UNSET", "EXPLAIN", "TERMINATE", "WINDOW", "TUMBLING", "HOPPING", "SESSION", "SIZE",
    "ADVANCE", "GRACE", "PERIOD", "RETENTION", "JOIN", "LEFT", "RIGHT", "FULL", "OUTER", "INNER", "ON", "WITHIN",
    "KEY", "PRIMARY", "KAFKA_TOPIC", "VALUE_FORMAT", "KEY_FORMAT", "FORMAT", "PARTITIONS", "TIMESTAMP",
    "TIMESTAMP_FORMAT", "VALUE_DELIMITER", "WRAP_SINGLE_VALUE", "JSON", "DELIMITED", "KAFKA", "NONE", "INT",
    "INTEGER", "BIGINT", "DOUBLE", "DECIMAL", "STRING", "VARCHAR", "BOOLEAN", "BYTES", "DATE", "TIME", "ARRAY", "MAP",
    "STRUCT", "CAST", "CASE", "WHEN", "THEN", "ELSE", "END", "AND", "OR", "NOT", "NULL", "IS", "IN", "BETWEEN",
    "LIKE", "TRUE", "FALSE", "ROWTIME", "ROWPARTITION", "ROWOFFSET", "WINDOWSTART", "WINDOWEND", "COUNT", "SUM",
    "AVG", "MIN", "MAX", "EXIT", "QUIT", "HELP",
];

const HELP: &str = "\
Statements end with ';' and may span lines. Examples:
  CREATE STREAM s (id INT KEY, name STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);
  INSERT INTO s (id, name) VALUES (1, 'a');
  SET 'auto.offset.reset' = 'earliest';
  SELECT * FROM s EMIT CHANGES LIMIT 1;
  SHOW STREAMS; SHOW QUERIES; DESCRIBE s; PRINT 's' FROM BEGINNING LIMIT 1;
  DEFINE name = 'value';  then ${name} in later statements;  RUN SCRIPT 'file.sql';
Commands (no ';' needed):
  help                     this text
  history                  the statements entered so far
  output [TABULAR|JSON|CSV] show or change how results are printed
  server [http://HOST:PORT] show where statements run, or run them on that server
  spool FILE | spool OFF   copy statements and output to FILE, or stop
  version                  Eddy's version
  clear                    clear the screen
  exit                     leave (also Ctrl-D)
Ctrl-C cancels a running query.";

struct EddyHelper {
    /// Stream, table and topic names, refreshed after each input.
    names: Arc<Mutex<Vec<String>>>,
}

impl Completer for EddyHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map(|i| i + 1).unwrap_or(0);
        let prefix = &before[start..];
        if prefix.is_empty() {
            return Ok((start, Vec::new()));
        }
        let upper = prefix.to_uppercase();
        let names = self.names.lock().clone();
        let mut out: Vec<Pair> = KEYWORDS
            .iter()
            .map(|k| k.to_string())
            .chain(names)
            .filter(|c| c.to_uppercase().starts_with(&upper))
            .map(|c| Pair { display: c.clone(), replacement: c })
            .collect();
        out.sort_by(|a, b| a.display.cmp(&b.display));
        out.dedup_by(|a, b| a.display == b.display);
        Ok((start, out))
    }
}

impl Hinter for EddyHelper {
    type Hint = String;
}

impl Highlighter for EddyHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(&'s self, prompt: &'p str, _default: bool) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for EddyHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input().trim();
        if input.is_empty() || is_command(input) || planner::parser::is_complete(input) {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

impl Helper for EddyHelper {}

/// The CLI commands (no `;` needed): the first word of the input.
const COMMANDS: &[&str] = &["exit", "quit", "help", "history", "output", "version", "server", "spool", "clear", "\\q", "\\h"];

fn is_command(s: &str) -> bool {
    let s = s.trim_end_matches(';').trim().to_lowercase();
    let first = s.split_whitespace().next().unwrap_or("");
    COMMANDS.contains(&first) && !(first == "output" && s.contains(' ') && !matches!(s.split_whitespace().nth(1), Some("tabular" | "table" | "json" | "csv")))
}

/// What a CLI command asks the loop to do.
enum After {
    Continue,
    Exit,
}

/// Runs one CLI command.
fn command(input: &str, backend: &mut Box<dyn Backend>, printer: &mut Printer, history: &[String]) -> After {
    let input = input.trim().trim_end_matches(';').trim();
    let mut words = input.split_whitespace();
    let first = words.next().unwrap_or("").to_lowercase();
    let rest: Vec<&str> = words.collect();
    match first.as_str() {
        "help" | "\\h" => println!("{HELP}"),
        "exit" | "quit" | "\\q" => return After::Exit,
        "history" => {
            for (i, h) in history.iter().enumerate() {
                println!("{:>4}  {h}", i + 1);
            }
        }
        "version" => println!("Version: {}", env!("CARGO_PKG_VERSION")),
        "clear" => print!("\x1b[2J\x1b[H"),
        "output" => match rest.first().map(|w| w.to_lowercase()) {
            None => println!("Output format: {}", mode_name(printer.mode())),
            Some(w) => {
                let mode = match w.as_str() {
                    "tabular" | "table" => OutputMode::Table,
                    "json" => OutputMode::Json,
                    "csv" => OutputMode::Csv,
                    _ => unreachable!("is_command checked the format"),
                };
                printer.set_mode(mode);
                println!("Output format set to {}", mode_name(mode));
            }
        },
        "server" => match rest.first() {
            None => println!("Statements run on {}.", backend.describe()),
            Some(url) => match crate::client::Remote::connect(url) {
                Ok(remote) => {
                    *backend = Box::new(remote);
                    println!("Statements now run on {}.", backend.describe());
                }
                Err(e) => eprintln!("Error: {e}"),
            },
        },
        "spool" => match rest.first() {
            None => eprintln!("Error: spool needs a file name or OFF"),
            Some(w) if w.eq_ignore_ascii_case("off") => match printer.spool_off() {
                Some(p) => println!("Spool to {p} stopped."),
                None => eprintln!("Error: no spool is active"),
            },
            Some(path) => match printer.spool_to(path) {
                Ok(()) => println!("Session will be spooled to {path}"),
                Err(e) => eprintln!("Error: cannot spool to \"{path}\": {e}"),
            },
        },
        _ => unreachable!("is_command checked the command"),
    }
    After::Continue
}

fn mode_name(m: OutputMode) -> &'static str {
    match m {
        OutputMode::Table => "TABULAR",
        OutputMode::Json => "JSON",
        OutputMode::Csv => "CSV",
    }
}

/// Runs the REPL on `backend` until exit; returns the exit status. `place` names what it runs
/// on (the data directory or the server) for the banner; the history lives in `$HOME` or there.
pub fn run(backend: &mut Box<dyn Backend>, place: &str, history_dir: &Path, mode: OutputMode) -> Result<i32> {
    let names = Arc::new(Mutex::new(backend.names()));
    let mut editor: Editor<EddyHelper, rustyline::history::DefaultHistory> = Editor::new()?;
    editor.set_helper(Some(EddyHelper { names: names.clone() }));
    let history = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".eddy_history"))
        .unwrap_or_else(|| history_dir.join(".eddy_history"));
    let _ = editor.load_history(&history);
    println!("Eddy {} — {place}. Type 'help' for examples and commands, 'exit' to leave.", env!("CARGO_PKG_VERSION"));
    let mut printer = Printer::new(mode);
    loop {
        let line = match editor.readline("eddy> ") {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let input = line.trim();
        if input.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(input);
        printer.spool_statement(input);
        if is_command(input) {
            let past: Vec<String> = editor.history().iter().map(|h| h.to_string()).collect();
            match command(input, backend, &mut printer, &past) {
                After::Continue => continue,
                After::Exit => break,
            }
        }
        match crate::script::run_statements(backend.as_mut(), input, &mut printer, true, 0) {
            Ok(()) | Err(crate::script::Stop::Interrupted) => {}
            Err(crate::script::Stop::Failed(m)) => eprintln!("{m}"),
        }
        *names.lock() = backend.names();
    }
    let _ = editor.save_history(&history);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_commands_need_no_semicolon() {
        for c in ["help", "exit", "quit;", "history", "output", "output json", "OUTPUT TABULAR", "version", "server", "server http://h:1", "spool /tmp/x", "spool off", "clear"] {
            assert!(is_command(c), "{c}");
        }
        for s in ["SELECT 1;", "output_table", "output foo", "SHOW STREAMS;"] {
            assert!(!is_command(s), "{s}");
        }
    }

    #[test]
    fn output_and_spool_commands() {
        let dir = tempfile::tempdir().unwrap();
        let eddy = planner::Eddy::open(&dir.path().join("data"), engine::EngineConfig::default()).unwrap();
        let mut backend: Box<dyn Backend> = Box::new(crate::backend::Embedded::new(&eddy, "data".into()).unwrap());
        let mut printer = Printer::new(OutputMode::Table);
        assert!(matches!(command("output json", &mut backend, &mut printer, &[]), After::Continue));
        assert_eq!(printer.mode(), OutputMode::Json);
        assert!(matches!(command("OUTPUT TABULAR", &mut backend, &mut printer, &[]), After::Continue));
        assert_eq!(printer.mode(), OutputMode::Table);
        let file = dir.path().join("spool.txt");
        command(&format!("spool {}", file.display()), &mut backend, &mut printer, &[]);
        printer.spool_statement("SHOW STREAMS;");
        printer.message("Stream created");
        command("spool off", &mut backend, &mut printer, &[]);
        printer.message("after the spool");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "ksql> SHOW STREAMS;\nStream created\n");
        assert!(matches!(command("exit", &mut backend, &mut printer, &[]), After::Exit));
        drop(backend);
        eddy.shutdown().unwrap();
    }
}
