//! Running statements non-interactively (`-f`, `-e`, stdin): each result is printed; the first
//! failing statement stops the run with a non-zero exit status and an error naming it.

use anyhow::Result;
use planner::{Eddy, Output};

use crate::print::Printer;
use crate::OutputMode;

/// Runs `sql`; returns the exit status.
pub fn run(eddy: &Eddy, sql: &str, mode: OutputMode) -> Result<i32> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut session = eddy.session();
    let statements = match session.parse(sql) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error: {}", engine::error_chain(&e));
            return Ok(1);
        }
    };
    let mut printer = Printer::new(mode);
    for st in statements {
        match session.execute(&st) {
            Ok(Output::Message(m)) => printer.message(&m),
            Ok(Output::Rows(rs)) => printer.rows(&rs),
            Ok(Output::Stream(mut pq)) => {
                let interrupted = rt.block_on(async {
                    printer.stream_start(&pq.schema);
                    loop {
                        tokio::select! {
                            b = pq.next() => match b {
                                Some(b) => printer.stream_batch(&b),
                                None => break false,
                            },
                            _ = tokio::signal::ctrl_c() => break true,
                        }
                    }
                });
                pq.finish();
                printer.stream_end(interrupted);
                if interrupted {
                    return Ok(130);
                }
            }
            Err(e) => {
                eprintln!("Error in statement: {}\n{}", st.text, engine::error_chain(&e));
                return Ok(1);
            }
        }
    }
    Ok(0)
}
