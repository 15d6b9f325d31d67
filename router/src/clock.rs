//! The seam through which wall-clock time enters the router, so tests and a future simulator can
//! replace it. Durations inside one process are measured with `Instant`, which needs no seam.

use std::time::SystemTime;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// `time` as RFC 3339 in UTC, for messages: `2026-11-23T13:29:02.123Z`.
pub fn rfc3339(time: SystemTime) -> String {
    prost_types::Timestamp::from(time).to_string()
}
