//! The open loop's arithmetic: when request `i` is due, how many are due by a moment, and the two
//! latencies of a request.
//!
//! Requests arrive at a fixed rate R: request `i` is scheduled at `start + i/R`, computed in whole
//! nanoseconds from `i` (never by adding intervals, which would drift). Its latency is measured from
//! that scheduled time, not from when the client got round to sending it: if the server stalls,
//! the requests that should have gone out meanwhile are late, and their lateness is part of what a
//! user would have waited. Measuring from the send instead hides it (coordinated omission). The
//! service time, from the actual send, is kept beside it so the two can be compared.
//!
//! Everything here is integer arithmetic on nanoseconds since the start; nothing reads a clock.

/// Nanoseconds per second.
const NANOS_PER_S: u128 = 1_000_000_000;

/// A fixed arrival rate, requests per second (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    rate_per_s: u64,
}

impl Schedule {
    pub fn new(rate_per_s: u64) -> Self {
        Self { rate_per_s: rate_per_s.max(1) }
    }

    /// When request `index` is due, in nanoseconds after the start: `index * 10^9 / rate`, rounded down.
    pub fn due_ns(&self, index: u64) -> u64 {
        let due = u128::from(index) * NANOS_PER_S / u128::from(self.rate_per_s);
        u64::try_from(due).unwrap_or(u64::MAX)
    }

    /// How many requests are due strictly before `elapsed_ns`: the first index not yet due.
    pub fn due_before(&self, elapsed_ns: u64) -> u64 {
        if elapsed_ns == 0 {
            return 0;
        }
        // The smallest i with i * 10^9 / rate >= elapsed, i.e. ceil(elapsed * rate / 10^9).
        let scaled = u128::from(elapsed_ns) * u128::from(self.rate_per_s);
        let count = scaled.div_ceil(NANOS_PER_S);
        u64::try_from(count).unwrap_or(u64::MAX)
    }

    /// How many requests are due at or before `elapsed_ns`: the ones a loop woken at that moment
    /// sends, in one burst if it woke late.
    pub fn due_by(&self, elapsed_ns: u64) -> u64 {
        self.due_before(elapsed_ns.saturating_add(1))
    }
}

/// The two latencies of one request, in microseconds, from nanoseconds after the start: from its
/// scheduled time to its answer (corrected for coordinated omission), and from its actual send to
/// its answer (service time). A request sent `d` late whose answer took `x` records `d + x` and `x`.
pub fn latencies_us(scheduled_ns: u64, sent_ns: u64, answered_ns: u64) -> (u64, u64) {
    let corrected = answered_ns.saturating_sub(scheduled_ns) / 1_000;
    let service = answered_ns.saturating_sub(sent_ns) / 1_000;
    (corrected, service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_due_at_index_over_rate() {
        fn check(rate: u64, index: u64, due_ns: u64) {
            assert_eq!(Schedule::new(rate).due_ns(index), due_ns, "request {index} at {rate}/s");
        }
        check(1_000, 0, 0);
        check(1_000, 1, 1_000_000);
        check(1_000, 2_500, 2_500_000_000);
        // 3 per second: 333_333_333.33 ns apart, rounded down per request, never accumulated.
        check(3, 1, 333_333_333);
        check(3, 2, 666_666_666);
        check(3, 3, 1_000_000_000);
        check(3, 3_000_000, 1_000_000_000_000_000);
        check(1_000_000, 1, 1_000);
        check(7, u64::MAX, u64::MAX);
        // A rate of 0 is refused by the options; here it must not divide by zero.
        check(0, 2, 2_000_000_000);
    }

    #[test]
    fn the_loop_sends_every_request_due_by_the_time_it_wakes() {
        fn check(rate: u64, elapsed_ns: u64, before: u64, by: u64) {
            let schedule = Schedule::new(rate);
            assert_eq!(schedule.due_before(elapsed_ns), before, "due before {elapsed_ns} ns at {rate}/s");
            assert_eq!(schedule.due_by(elapsed_ns), by, "due by {elapsed_ns} ns at {rate}/s");
        }
        check(1_000, 0, 0, 1);
        check(1_000, 999_999, 1, 1);
        check(1_000, 1_000_000, 1, 2);
        check(1_000, 1_000_001, 2, 2);
        // Woken 10 ms late at 5,000/s: the burst is everything up to now, 51 requests in all.
        check(5_000, 10_000_000, 50, 51);
        check(3, 1_000_000_000, 3, 4);
        // Consistent with due_ns: request i is the first due at due_ns(i).
        let schedule = Schedule::new(7_919);
        for index in [1, 2, 10, 7_918, 7_919, 123_456] {
            let due = schedule.due_ns(index);
            assert_eq!(schedule.due_by(due), index + 1);
            assert_eq!(schedule.due_by(due - 1), index);
        }
    }

    #[test]
    fn latency_counts_from_the_scheduled_time_and_service_time_from_the_send() {
        fn check(scheduled_ns: u64, sent_ns: u64, answered_ns: u64, expected: (u64, u64)) {
            assert_eq!(latencies_us(scheduled_ns, sent_ns, answered_ns), expected);
        }
        // On time: both the same.
        check(1_000_000, 1_000_000, 3_000_000, (2_000, 2_000));
        // Scheduled at t, sent 40 ms late (the server stalled the loop), answered 2 ms later:
        // 42 ms recorded, 2 ms of service.
        check(1_000_000, 41_000_000, 43_000_000, (42_000, 2_000));
        // A request never sent records its wait so far as both.
        check(5_000_000, 9_000_000, 9_000_000, (4_000, 0));
        // A clock that went backwards cannot make a latency negative.
        check(5_000_000, 5_000_000, 4_000_000, (0, 0));
    }
}
