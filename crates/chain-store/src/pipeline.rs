//! An order-keeping parallel map: items are taken from an iterator one at a time (the
//! iterator itself runs on one thread at a time, so it may read a file), turned into results
//! on worker threads, and handed to the calling thread in the iterator's order.
//!
//! Memory stays bounded: no more than [`IN_FLIGHT`] items are taken ahead of the consumer,
//! so a slow item holds the others back instead of letting finished results pile up.

use std::collections::BTreeMap;
use std::sync::mpsc::channel;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Items taken from the iterator and not yet consumed, at most.
pub(crate) const IN_FLIGHT: usize = 32;

struct Source<I> {
    items: std::iter::Enumerate<I>,
    taken: usize,
    consumed: usize,
    stop: bool,
}

/// Runs `work` over `items` on `threads` workers and `consume` over the results in order, on
/// the calling thread. Stops at the first error of either (workers stop taking items).
pub(crate) fn ordered<I, R, E>(
    items: I,
    work: impl Fn(I::Item) -> Result<R, E> + Sync,
    threads: usize,
    mut consume: impl FnMut(R) -> Result<(), E>,
) -> Result<(), E>
where
    I: Iterator + Send,
    I::Item: Send,
    R: Send,
    E: Send,
{
    let source = Mutex::new(Source { items: items.enumerate(), taken: 0, consumed: 0, stop: false });
    let room = Condvar::new();
    // A worker that panicked cannot leave the counters half updated: they change together.
    let lock = || source.lock().unwrap_or_else(|p| p.into_inner());
    let (tx, rx) = channel::<(usize, Result<R, E>)>();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            let tx = tx.clone();
            let (work, room, lock) = (&work, &room, &lock);
            scope.spawn(move || {
                loop {
                    let next = {
                        let mut s: MutexGuard<'_, Source<I>> = lock();
                        while !s.stop && s.taken - s.consumed >= IN_FLIGHT {
                            s = room.wait(s).unwrap_or_else(|p| p.into_inner());
                        }
                        let next = if s.stop { None } else { s.items.next() };
                        s.taken += usize::from(next.is_some());
                        next
                    };
                    let Some((index, item)) = next else { break };
                    let result = work(item);
                    let failed = result.is_err();
                    if tx.send((index, result)).is_err() || failed {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        let outcome = (|| {
            for (index, result) in &rx {
                waiting.insert(index, result);
                while let Some(result) = waiting.remove(&next) {
                    next += 1;
                    consume(result?)?;
                    lock().consumed += 1;
                    room.notify_one();
                }
            }
            Ok(())
        })();
        lock().stop = true;
        room.notify_all();
        drop(rx);
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_order_whatever_the_workers_take() {
        let mut seen = Vec::new();
        // Early items are the slowest, so later ones finish first.
        let r: Result<(), ()> = ordered(
            0..200u64,
            |i| {
                std::thread::sleep(std::time::Duration::from_micros(200u64.saturating_sub(i) * 5));
                Ok(i * 2)
            },
            4,
            |v| {
                seen.push(v);
                Ok(())
            },
        );
        assert!(r.is_ok());
        assert_eq!(seen, (0..200u64).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn the_first_error_in_order_stops_everything() {
        let mut seen = Vec::new();
        let taken = std::sync::atomic::AtomicUsize::new(0);
        let r = ordered(
            (0..10_000u64).inspect(|_| {
                taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }),
            |i| if i == 50 || i == 70 { Err(i) } else { Ok(i) },
            3,
            |v| {
                seen.push(v);
                Ok(())
            },
        );
        assert_eq!(r, Err(50));
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        // Nothing runs far ahead of the consumer.
        assert!(taken.into_inner() <= 50 + IN_FLIGHT + 3);
    }

    #[test]
    fn a_consumer_error_stops_the_workers() {
        let r = ordered(0..u64::MAX, Ok::<u64, u64>, 2, |v| if v == 10 { Err(v) } else { Ok(()) });
        assert_eq!(r, Err(10));
    }
}
