//! Running statements non-interactively (`-f`, `-e`, stdin): each result is printed; the first
//! failing statement stops the run with a non-zero exit status and an error naming it.
//!
//! Statements are parsed one at a time as they run, so that each sees the variables the ones
//! before it defined (`DEFINE`), and a statement that does not parse stops the run there, after
//! the statements before it ran. `RUN SCRIPT 'file'` runs the file's statements in place.

use anyhow::Result;
use planner::ast::Statement;

use crate::backend::{Backend, Ran};
use crate::print::Printer;
use crate::OutputMode;

/// How deep `RUN SCRIPT` may nest (a script running itself stops there).
const MAX_DEPTH: usize = 16;

/// Why a script stopped early.
pub enum Stop {
    /// A statement failed: the message says which and why.
    Failed(String),
    /// Ctrl-C ended a push query.
    Interrupted,
}

/// Runs `sql` on `backend` (embedded or a server); returns the exit status.
pub fn run(backend: &mut dyn Backend, sql: &str, mode: OutputMode) -> Result<i32> {
    let mut printer = Printer::new(mode);
    Ok(match run_statements(backend, sql, &mut printer, false, 0) {
        Ok(()) => 0,
        Err(Stop::Failed(m)) => {
            eprintln!("{m}");
            1
        }
        Err(Stop::Interrupted) => 130,
    })
}

/// Runs every statement of `sql` in order, stopping at the first failure.
pub fn run_statements(
    backend: &mut dyn Backend,
    sql: &str,
    printer: &mut Printer,
    interactive: bool,
    depth: usize,
) -> Result<(), Stop> {
    let texts = planner::parser::split_statements(sql).map_err(|e| Stop::Failed(format!("Error: {}", engine::error_chain(&e))))?;
    for text in texts {
        let statements = backend.parse(&text).map_err(|e| Stop::Failed(format!("Error in statement: {text}\n{e}")))?;
        for st in statements {
            if let Statement::RunScript(path) = &st.statement {
                if depth >= MAX_DEPTH {
                    return Err(Stop::Failed(format!("Error in statement: {}\nRUN SCRIPT nests more than {MAX_DEPTH} deep", st.text)));
                }
                let script = std::fs::read_to_string(path)
                    .map_err(|e| Stop::Failed(format!("Error in statement: {}\ncannot read script \"{path}\": {e}", st.text)))?;
                run_statements(backend, &script, printer, interactive, depth + 1)?;
                continue;
            }
            match backend.run(&st, printer, interactive) {
                Ok(Ran::Done) => {}
                Ok(Ran::Interrupted) => return Err(Stop::Interrupted),
                Err(e) => return Err(Stop::Failed(format!("Error in statement: {}\n{e}", st.text))),
            }
        }
    }
    Ok(())
}
