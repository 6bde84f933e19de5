//! Running statements non-interactively (`-f`, `-e`, stdin): each result is printed; the first
//! failing statement stops the run with a non-zero exit status and an error naming it.

use anyhow::Result;

use crate::backend::{Backend, Ran};
use crate::print::Printer;
use crate::OutputMode;

/// Runs `sql` on `backend` (embedded or a server); returns the exit status.
pub fn run(backend: &mut dyn Backend, sql: &str, mode: OutputMode) -> Result<i32> {
    let statements = match planner::parser::parse(sql) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error: {}", engine::error_chain(&e));
            return Ok(1);
        }
    };
    let mut printer = Printer::new(mode);
    for st in statements {
        match backend.run(&st, &mut printer, false) {
            Ok(Ran::Done) => {}
            Ok(Ran::Interrupted) => return Ok(130),
            Err(e) => {
                eprintln!("Error in statement: {}\n{e}", st.text);
                return Ok(1);
            }
        }
    }
    Ok(0)
}
