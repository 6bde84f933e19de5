//! Window clauses: `WINDOW TUMBLING (SIZE ...)`, `HOPPING (SIZE ..., ADVANCE BY ...)`,
//! `SESSION (gap)`, each with an optional `GRACE PERIOD` and `RETENTION`, resolved into the
//! engine's window definition (milliseconds), as ksqlDB validates them.

use std::time::Duration;

use engine::spec::{WindowDef, WindowKind};

use crate::ast::{WindowKind as AstWindow, WindowSpec};
use crate::catalog::WindowType;
use crate::error::{invalid, Result};

/// ksqlDB's grace period when a window clause gives none.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Resolves a window clause.
pub fn window_def(w: &WindowSpec) -> Result<WindowDef> {
    let ms = |d: Duration| d.as_millis() as i64;
    let kind = match w.kind {
        AstWindow::Tumbling { size } => WindowKind::Tumbling { size_ms: ms(size) },
        AstWindow::Hopping { size, advance } => {
            if advance > size {
                return Err(invalid(format!(
                    "Window advance ({} ms) must not be larger than the window size ({} ms)",
                    ms(advance),
                    ms(size)
                )));
            }
            if advance.is_zero() {
                return Err(invalid("Window advance must be larger than zero"));
            }
            WindowKind::Hopping { size_ms: ms(size), advance_ms: ms(advance) }
        }
        AstWindow::Session { gap } => WindowKind::Session { gap_ms: ms(gap) },
    };
    let size = match kind {
        WindowKind::Tumbling { size_ms } | WindowKind::Hopping { size_ms, .. } => size_ms,
        WindowKind::Session { gap_ms } => gap_ms,
    };
    if size <= 0 {
        return Err(invalid("Window size must be larger than zero"));
    }
    let grace = ms(w.grace.unwrap_or(DEFAULT_GRACE));
    let retention = match w.retention {
        Some(r) => {
            let r = ms(r);
            if r < size + grace {
                return Err(invalid(format!(
                    "Retention ({r} ms) must be at least the window size plus the grace period ({} ms)",
                    size + grace
                )));
            }
            r
        }
        None => size + grace,
    };
    Ok(WindowDef { kind, grace_ms: grace, retention_ms: retention })
}

/// The window type of a windowed result's key.
pub fn window_type(w: &WindowDef) -> WindowType {
    match w.kind {
        WindowKind::Tumbling { size_ms } | WindowKind::Hopping { size_ms, .. } => WindowType::Time { size_ms: size_ms as u64 },
        WindowKind::Session { .. } => WindowType::Session,
    }
}
