//! What subscribers saw: latency, and per publisher whether anything was lost, doubled or
//! came out of order.

use std::collections::{BTreeSet, HashMap};

use hdrhistogram::Histogram;

use crate::payload::Stamp;

/// One subscriber's (or, merged, all subscribers') observations.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Latency of measured deliveries, µs.
    pub latency: Histogram<u64>,
    /// Deliveries sent within the measured window.
    pub measured: u64,
    /// Every delivery.
    pub delivered: u64,
    /// Copies of a message already received.
    pub doubled: u64,
    /// Messages that arrived after a later one of the same publisher.
    pub reordered: u64,
    /// ERROR frames.
    pub errors: u64,
    /// Per publisher: highest sequence seen, and gaps below it still missing.
    seen: HashMap<usize, (u64, BTreeSet<u64>)>,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            measured: 0,
            delivered: 0,
            doubled: 0,
            reordered: 0,
            errors: 0,
            seen: HashMap::new(),
        }
    }
}

impl Tally {
    /// Records one delivery received at `now_us`; counted in the figures when it was sent
    /// within `[from_us, to_us)`.
    pub fn record(&mut self, stamp: Stamp, now_us: u64, from_us: u64, to_us: u64) {
        self.delivered += 1;
        let (highest, missing) = self.seen.entry(stamp.publisher).or_insert((0, BTreeSet::new()));
        if stamp.seq > *highest {
            missing.extend(*highest + 1..stamp.seq);
            *highest = stamp.seq;
        } else if missing.remove(&stamp.seq) {
            self.reordered += 1;
        } else {
            self.doubled += 1;
            return;
        }
        if (from_us..to_us).contains(&stamp.sent_us) {
            self.measured += 1;
            let _ = self.latency.record(now_us.saturating_sub(stamp.sent_us).max(1));
        }
    }

    /// Messages of `publisher` up to `last_sent` that never arrived.
    pub fn lost_from(&self, publisher: usize, last_sent: u64) -> u64 {
        match self.seen.get(&publisher) {
            Some((highest, missing)) => missing.len() as u64 + last_sent.saturating_sub(*highest),
            None => last_sent,
        }
    }

    /// Adds another tally's figures (not its per-publisher state).
    pub fn absorb(&mut self, other: &Tally) {
        let _ = self.latency.add(&other.latency);
        self.measured += other.measured;
        self.delivered += other.delivered;
        self.doubled += other.doubled;
        self.reordered += other.reordered;
        self.errors += other.errors;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(seq: u64) -> Stamp {
        Stamp { publisher: 0, seq, sent_us: 10 }
    }

    #[test]
    fn gaps_copies_and_late_arrivals_are_told_apart() {
        let mut tally = Tally::default();
        for seq in [1, 2, 4, 3, 4, 6] {
            tally.record(stamp(seq), 20, 0, 100);
        }
        assert_eq!((tally.delivered, tally.doubled, tally.reordered, tally.measured), (6, 1, 1, 5));
        assert_eq!(tally.lost_from(0, 7), 2, "5 is missing, 7 never came");
    }
}
