//! Puts one numbered stream (a room, or the user's DM inbox) in id order, and notices when
//! ids are missing.
//!
//! The server delivers every stream gap-free and in order. This is the page's own check on
//! that promise: an event whose id jumps ahead of the last one applied is held back, the
//! missing ids are fetched over HTTP, and the held events follow them. So no defect
//! anywhere between the store and the page can hide a lost message from its reader.
//!
//! Pure: no signals, no browser. The model wraps one per stream.

use std::collections::BTreeMap;

/// Held events at most; past this, the oldest gap is given up on and what is held shows.
const MAX_HELD: usize = 10_000;

/// One stream's position and the events waiting behind a gap.
#[derive(Debug, Clone)]
pub struct Sequence<T> {
    last: u64,
    held: BTreeMap<u64, T>,
    fetching: bool,
}

/// What to do after an event or a fetched page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step<T> {
    /// Events to apply now, in id order.
    pub apply: Vec<(u64, T)>,
    /// Ids after this one are missing: fetch them (at most one fetch runs at a time).
    pub fetch_after: Option<u64>,
}

impl<T> Default for Step<T> {
    fn default() -> Step<T> {
        Step { apply: Vec::new(), fetch_after: None }
    }
}

impl<T> Default for Sequence<T> {
    fn default() -> Sequence<T> {
        Sequence { last: 0, held: BTreeMap::new(), fetching: false }
    }
}

impl<T> Sequence<T> {
    /// The highest id applied: where a resume starts.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Whether events are waiting behind a gap.
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Moves the position forward to `seq` (from a room list or a history page), dropping
    /// held events that it covers.
    pub fn advance_to(&mut self, seq: u64) -> Step<T> {
        if seq > self.last {
            self.last = seq;
            self.held = self.held.split_off(&(seq + 1));
        }
        self.release()
    }

    /// A live event with id `seq`.
    pub fn offer(&mut self, seq: u64, event: T) -> Step<T> {
        if seq <= self.last {
            return Step::default();
        }
        self.held.insert(seq, event);
        if self.held.len() > MAX_HELD {
            // Something is badly wrong upstream: show what there is rather than nothing.
            let first = *self.held.keys().next().expect("more than MAX_HELD are held");
            self.last = first - 1;
        }
        self.release()
    }

    /// The events fetched after a gap, oldest first; `more` says whether the server has
    /// more after them.
    pub fn fetched(&mut self, events: Vec<(u64, T)>, more: bool) -> Step<T> {
        self.fetching = false;
        for (seq, event) in events {
            if seq > self.last {
                self.held.entry(seq).or_insert(event);
            }
        }
        let mut apply = self.take_ready();
        if !more && let Some(&first) = self.held.keys().next() {
            // The store had nothing more, yet the first held id does not follow: the ids
            // between do not exist. Show what is held rather than wait forever.
            self.last = first - 1;
            apply.extend(self.take_ready());
        }
        Step { apply, fetch_after: self.request_fetch() }
    }

    /// A fetch failed: it may be tried again.
    pub fn fetch_failed(&mut self) -> Step<T> {
        self.fetching = false;
        self.release()
    }

    /// Applies every held event that follows the last one; asks for a fetch when a gap
    /// remains and none is running.
    fn release(&mut self) -> Step<T> {
        let apply = self.take_ready();
        Step { apply, fetch_after: self.request_fetch() }
    }

    /// The held events that follow the last one applied, now applied.
    fn take_ready(&mut self) -> Vec<(u64, T)> {
        let mut apply = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() != self.last + 1 {
                break;
            }
            let (seq, event) = entry.remove_entry();
            self.last = seq;
            apply.push((seq, event));
        }
        apply
    }

    /// Where a fetch should start, if a gap remains and no fetch runs.
    fn request_fetch(&mut self) -> Option<u64> {
        (self.is_holding() && !self.fetching).then(|| {
            self.fetching = true;
            self.last
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(step: &Step<&str>) -> Vec<u64> {
        step.apply.iter().map(|(seq, _)| *seq).collect()
    }

    #[test]
    fn in_order_events_apply_at_once_and_copies_are_dropped() {
        let mut sequence = Sequence::default();
        sequence.advance_to(4);
        assert_eq!(seqs(&sequence.offer(5, "e")), [5]);
        assert_eq!(seqs(&sequence.offer(5, "e again")), Vec::<u64>::new());
        assert_eq!(seqs(&sequence.offer(3, "old")), Vec::<u64>::new());
        assert_eq!(sequence.last(), 5);
    }

    #[test]
    fn a_gap_holds_what_follows_and_asks_for_the_missing_ids_once() {
        let mut sequence = Sequence::default();
        sequence.advance_to(10);
        let step = sequence.offer(13, "m13");
        assert_eq!((seqs(&step), step.fetch_after), (vec![], Some(10)));
        let step = sequence.offer(14, "m14");
        assert_eq!((seqs(&step), step.fetch_after), (vec![], None), "one fetch at a time");
        let step = sequence.fetched(vec![(11, "m11"), (12, "m12"), (13, "m13 fetched")], false);
        assert_eq!(seqs(&step), [11, 12, 13, 14]);
        assert_eq!(step.apply[2].1, "m13", "the live copy held is kept");
        assert!(!sequence.is_holding());
    }

    #[test]
    fn a_long_gap_is_fetched_page_by_page() {
        let mut sequence = Sequence::default();
        assert_eq!(sequence.offer(500, "m500").fetch_after, Some(0));
        let page: Vec<(u64, &str)> = (1..=200).map(|seq| (seq, "m")).collect();
        let step = sequence.fetched(page, true);
        assert_eq!((step.apply.len(), step.fetch_after), (200, Some(200)));
        let page: Vec<(u64, &str)> = (201..=400).map(|seq| (seq, "m")).collect();
        let step = sequence.fetched(page, true);
        assert_eq!(step.fetch_after, Some(400));
        let page: Vec<(u64, &str)> = (401..=499).map(|seq| (seq, "m")).collect();
        let step = sequence.fetched(page, false);
        assert_eq!((step.apply.len(), step.fetch_after), (100, None));
        assert_eq!(sequence.last(), 500);
    }

    #[test]
    fn ids_the_store_does_not_have_do_not_block_forever() {
        let mut sequence = Sequence::default();
        sequence.advance_to(1);
        assert_eq!(sequence.offer(5, "m5").fetch_after, Some(1));
        let step = sequence.fetched(vec![(2, "m2")], false);
        assert_eq!(seqs(&step), [2, 5]);
        assert!(!sequence.is_holding());
    }

    #[test]
    fn a_failed_fetch_is_asked_for_again() {
        let mut sequence = Sequence::default();
        assert_eq!(sequence.offer(3, "m3").fetch_after, Some(0));
        assert_eq!(sequence.fetch_failed().fetch_after, Some(0));
    }

    #[test]
    fn advancing_past_held_events_releases_them() {
        let mut sequence = Sequence::default();
        sequence.offer(3, "m3");
        sequence.offer(4, "m4");
        let step = sequence.advance_to(3);
        assert_eq!(seqs(&step), [4]);
    }
}
