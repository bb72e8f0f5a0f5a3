//! An ordered, bounded streaming window: worker threads take item indexes in order and run
//! them in parallel, each item giving a stream of chunks and then an end value; the consumer
//! reads the items' chunks in index order while later items are still being made.
//!
//! Memory is bounded by a byte budget over every chunk waiting: once it is reached, a worker
//! waits before adding a chunk — except the worker of the item the consumer is reading, whose
//! chunks are drained as they come, so the window never deadlocks. A worker also starts item
//! `k` only while `k` is within `ahead` items of that one. However large an item (a package
//! of 50,000 functions), what waits is at most the budget plus one chunk a thread.
//!
//! Hand-written because rayon's ordered collect holds every result until the end, its
//! batch-at-a-time alternative idles threads behind the slowest item of each batch, and
//! neither streams one item's output while it is being made.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Condvar, Mutex};

pub struct Window<T, F> {
    state: Mutex<State<T, F>>,
    changed: Condvar,
    len: usize,
    ahead: usize,
    budget: usize,
}

struct Slot<T, F> {
    chunks: VecDeque<(T, usize)>,
    end: Option<F>,
}

struct State<T, F> {
    next_start: usize,
    reading: usize,
    slots: BTreeMap<usize, Slot<T, F>>,
    buffered: usize,
    stopped: bool,
}

/// What the consumer reads next of an item.
pub enum Next<T, F> {
    Chunk(T),
    End(F),
}

impl<T, F> Window<T, F> {
    pub fn new(len: usize, ahead: usize, budget: usize) -> Window<T, F> {
        Window {
            state: Mutex::new(State {
                next_start: 0,
                reading: 0,
                slots: BTreeMap::new(),
                buffered: 0,
                stopped: false,
            }),
            changed: Condvar::new(),
            len,
            ahead: ahead.max(1),
            budget,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T, F>> {
        // Poisoning would need a panic while the lock is held, which nothing here does.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(
        &self,
        s: std::sync::MutexGuard<'a, State<T, F>>,
    ) -> std::sync::MutexGuard<'a, State<T, F>> {
        self.changed.wait(s).unwrap_or_else(|p| p.into_inner())
    }

    /// A worker's loop: runs `run(k, push)` for the items it is let take, until none is left
    /// or the window is stopped. `push(chunk, bytes)` hands a chunk over (waiting while the
    /// budget is spent); `run` returns the item's end value.
    pub fn work(&self, mut run: impl FnMut(usize, &mut dyn FnMut(T, usize)) -> F) {
        loop {
            let k = {
                let mut s = self.lock();
                loop {
                    if s.stopped || s.next_start >= self.len {
                        return;
                    }
                    let k = s.next_start;
                    if k == s.reading || (k < s.reading + self.ahead && s.buffered < self.budget) {
                        s.next_start += 1;
                        s.slots.insert(
                            k,
                            Slot {
                                chunks: VecDeque::new(),
                                end: None,
                            },
                        );
                        break k;
                    }
                    s = self.wait(s);
                }
            };
            let end = run(k, &mut |chunk, bytes| {
                let mut s = self.lock();
                while !s.stopped && k != s.reading && s.buffered >= self.budget {
                    s = self.wait(s);
                }
                if s.stopped {
                    return;
                }
                s.buffered += bytes;
                s.slots
                    .get_mut(&k)
                    .expect("started")
                    .chunks
                    .push_back((chunk, bytes));
                self.changed.notify_all();
            });
            let mut s = self.lock();
            s.slots.get_mut(&k).expect("started").end = Some(end);
            self.changed.notify_all();
        }
    }

    /// The next chunk of item `k`, or its end; items are read in order, each to its end.
    pub fn next(&self, k: usize) -> Next<T, F> {
        let mut s = self.lock();
        debug_assert_eq!(k, s.reading);
        loop {
            if let Some(slot) = s.slots.get_mut(&k) {
                if let Some((chunk, bytes)) = slot.chunks.pop_front() {
                    s.buffered -= bytes;
                    self.changed.notify_all();
                    return Next::Chunk(chunk);
                }
                if let Some(end) = slot.end.take() {
                    s.slots.remove(&k);
                    s.reading = k + 1;
                    self.changed.notify_all();
                    return Next::End(end);
                }
            }
            s = self.wait(s);
        }
    }

    /// No further item starts and chunks are dropped (the consumer gave up).
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::{Next, Window};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn items_stream_in_order_and_the_budget_holds() {
        let n = 60;
        // Item k gives k % 7 chunks of 100 bytes each.
        let w: Window<(usize, usize), usize> = Window::new(n, 8, 1000);
        let waiting = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for t in 0..4 {
                let (w, waiting, peak) = (&w, &waiting, &peak);
                scope.spawn(move || {
                    w.work(|k, push| {
                        for c in 0..k % 7 {
                            // Uneven work, so items finish out of order.
                            std::thread::sleep(std::time::Duration::from_micros(
                                ((k * 7 + c + t) % 5) as u64 * 100,
                            ));
                            let now = waiting.fetch_add(100, Ordering::SeqCst) + 100;
                            peak.fetch_max(now, Ordering::SeqCst);
                            push((k, c), 100);
                        }
                        k
                    })
                });
            }
            for k in 0..n {
                let mut c = 0;
                loop {
                    match w.next(k) {
                        Next::Chunk(got) => {
                            assert_eq!(got, (k, c));
                            c += 1;
                            waiting.fetch_sub(100, Ordering::SeqCst);
                        }
                        Next::End(end) => {
                            assert_eq!((end, c), (k, k % 7));
                            break;
                        }
                    }
                }
            }
        });
        // The budget, plus a chunk in hand a thread and what the item being read runs ahead
        // (18,000 bytes would wait unbounded).
        assert!(peak.load(Ordering::SeqCst) <= 1000 + 8 * 100, "{peak:?}");
    }

    #[test]
    fn a_stopped_window_lets_workers_return() {
        let w: Window<usize, ()> = Window::new(1000, 4, 10);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                w.work(|k, push| {
                    for c in 0..100 {
                        push(c, k + 1)
                    }
                })
            });
            assert!(matches!(w.next(0), Next::Chunk(0)));
            w.stop();
        });
    }
}
