//! Work split over the CPU's cores for the converter and the random-package writer (native only;
//! the browser converts nothing). Results never depend on the number of threads.

/// Runs `f(index, chunk)` for each `chunk`-sized piece of `data` (the last may be shorter), on all
/// cores.
pub fn for_each_chunk_mut<T: Send>(data: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let chunk = chunk.max(1);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || data.len() <= chunk {
        data.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
        return;
    }
    let pieces: Vec<(usize, &mut [T])> = data.chunks_mut(chunk).enumerate().collect();
    let next = std::sync::Mutex::new(pieces.into_iter());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let Some((i, c)) = next.lock().expect("no worker panics while holding it").next() else { break };
                f(i, c);
            });
        }
    });
}

/// `f` applied to each item on all cores, results in the items' order.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let mut out: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    for_each_chunk_mut(&mut out, 1, |i, slot| slot[0] = Some(f(&items[i])));
    out.into_iter().map(|r| r.expect("every item mapped")).collect()
}
