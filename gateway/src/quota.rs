//! Quota reservations of a hosted remote's uploads in progress.
//!
//! The quota itself is enforced by the index, in the transaction that
//! commits an upload (`EntryIndex::put_entry_checked`): stored bytes never
//! exceed it. Reservations only refuse early what could not fit anyway: an
//! upload that declares its length reserves it when it starts, and one
//! that would take the remote's stored bytes plus every reservation beyond
//! the quota is refused with 507 at once, instead of spooling its whole
//! body to lose at the commit. A streamed upload (no `Content-Length`) is
//! checked against the same sum as it grows but reserves nothing: growing
//! reservations of concurrent streams could refuse all of them although
//! one would fit. Reservations are kept in memory (an upload in progress
//! does not survive the process) and released when the upload ends,
//! whatever its outcome.
//!
//! Reservations are conservative: an upload refused because of another
//! upload's reservation stays refused even if that other upload fails
//! later.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes reserved by a remote's uploads in progress.
#[derive(Debug, Default)]
pub struct InFlight(AtomicU64);

impl InFlight {
    /// A reservation of nothing yet.
    pub fn reservation(&self) -> Reservation<'_> {
        Reservation {
            in_flight: self,
            bytes: 0,
        }
    }

    /// Bytes reserved now.
    pub fn reserved(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Whether `len` more bytes fit beside `used` stored bytes and every
    /// reservation under `limit` (reserving nothing).
    pub fn fits(&self, len: u64, used: u64, limit: u64) -> bool {
        used.saturating_add(self.reserved()).saturating_add(len) <= limit
    }
}

/// One upload's share of [`InFlight`]; dropping it releases the bytes.
#[derive(Debug)]
pub struct Reservation<'a> {
    in_flight: &'a InFlight,
    bytes: u64,
}

impl Reservation<'_> {
    /// Make the reservation at least `total` bytes, atomically with respect
    /// to every other reservation: false (and nothing changes) when `used`
    /// stored bytes plus all reservations would then exceed `limit`.
    pub fn ensure(&mut self, total: u64, used: u64, limit: u64) -> bool {
        let Some(more) = total.checked_sub(self.bytes).filter(|m| *m > 0) else {
            return true;
        };
        let grown = self
            .in_flight
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                let after = now.checked_add(more)?;
                (used.saturating_add(after) <= limit).then_some(after)
            });
        if grown.is_ok() {
            self.bytes = total;
        }
        grown.is_ok()
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.in_flight.0.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_add_up_and_are_released() {
        let f = InFlight::default();
        let mut a = f.reservation();
        let mut b = f.reservation();
        assert!(a.ensure(600, 100, 1000));
        assert!(!b.ensure(400, 100, 1000), "100 + 600 + 400 > 1000");
        assert!(b.ensure(300, 100, 1000));
        assert_eq!(f.reserved(), 900);
        // Growing counts only the difference; shrinking is a no-op.
        assert!(a.ensure(600, 100, 1000));
        assert!(a.ensure(10, 100, 1000));
        assert!(!a.ensure(601, 100, 1000));
        drop(a);
        assert_eq!(f.reserved(), 300);
        assert!(b.ensure(900, 100, 1000));
        assert!(f.fits(0, 100, 1000));
        assert!(!f.fits(1, 100, 1000));
        drop(b);
        assert_eq!(f.reserved(), 0);
        assert!(f.fits(900, 100, 1000));
    }

    #[test]
    fn concurrent_reservations_never_exceed_the_limit() {
        let f = std::sync::Arc::new(InFlight::default());
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (f, barrier) = (f.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let mut r = f.reservation();
                    let ok = r.ensure(300, 0, 1000);
                    let seen = f.reserved();
                    barrier.wait();
                    (ok, seen)
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|(ok, _)| *ok).count(), 3);
        assert!(results.iter().all(|(_, seen)| *seen <= 1000));
        assert_eq!(f.reserved(), 0);
    }
}
