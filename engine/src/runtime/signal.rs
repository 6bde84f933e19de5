//! A wake-up flag a task thread sleeps on: set by the log when its inputs grow, by the
//! checkpointer when a barrier is due, and by `stop`.

use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// A sticky wake-up: `notify` before `wait` is not lost.
#[derive(Default)]
pub struct Signal {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Signal {
    /// Wakes the waiter (or the next one to wait).
    pub fn notify(&self) {
        let mut f = self.flag.lock();
        *f = true;
        self.cv.notify_one();
    }

    /// Sleeps until notified or `timeout` passes, then clears the flag.
    pub fn wait(&self, timeout: Duration) {
        let mut f = self.flag.lock();
        if !*f {
            self.cv.wait_for(&mut f, timeout);
        }
        *f = false;
    }
}
