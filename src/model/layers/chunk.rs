//! Running work in chunks so that temporaries stay bounded: row chunks within one recording
//! (`by_rows`, each chunk flushed so that the next reuses its buffers), frame chunks
//! (`ranges`), and stages as submissions of their own (`submitted`).

use std::ops::Range;

use crate::gpu::{Gpu, Recorder, Tensor};
use crate::model::MResult;

/// 0..total in consecutive ranges of at most `per` (at least 1).
pub fn ranges(total: usize, per: usize) -> impl Iterator<Item = Range<usize>> {
    let per = per.max(1);
    (0..total).step_by(per).map(move |r0| r0..(r0 + per).min(total))
}

/// Rows `r` of the 2-D activation `x` as a tensor of their own (copied), or `x` itself when `r`
/// is all of it.
pub fn rows(rec: &mut Recorder, x: &Tensor, r: Range<usize>) -> MResult<Tensor> {
    if r == (0..x.rows()) {
        return Ok(x.clone());
    }
    let gpu = rec.gpu;
    let row = (x.cols() * gpu.act.size()) as u64;
    let out = gpu.alloc_act(&[r.len(), x.cols()])?;
    rec.copy(x, r.start as u64 * row, &out, 0, r.len() as u64 * row);
    Ok(out)
}

/// An [n, cols] activation computed `per` rows at a time: `f(rec, rows)` returns those rows, which
/// are copied into place, then the recording is flushed so that the next chunk reuses this one's
/// buffers. With `per >= n`, `f(rec, 0..n)` is the result itself (no copy, no flush).
pub fn by_rows(rec: &mut Recorder, n: usize, per: usize, cols: usize, mut f: impl FnMut(&mut Recorder, Range<usize>) -> MResult<Tensor>) -> MResult<Tensor> {
    if per >= n {
        return f(rec, 0..n);
    }
    let gpu = rec.gpu;
    let row = (cols * gpu.act.size()) as u64;
    let out = gpu.alloc_act(&[n, cols])?;
    for r in ranges(n, per) {
        let y = f(rec, r.clone())?;
        rec.copy(&y, 0, &out, r.start as u64 * row, r.len() as u64 * row);
        rec.flush()?;
    }
    Ok(out)
}

/// `f` recorded and submitted on its own, so that the buffer pool can give its temporaries to the
/// next stage (what it returns stays alive).
pub fn submitted<T>(gpu: &Gpu, f: impl FnOnce(&mut Recorder) -> MResult<T>) -> MResult<T> {
    let mut rec = Recorder::new(gpu);
    let t = f(&mut rec)?;
    rec.submit()?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::ranges;

    #[test]
    fn ranges_cover_the_total_in_order() {
        assert_eq!(ranges(10, 4).collect::<Vec<_>>(), vec![0..4, 4..8, 8..10]);
        assert_eq!(ranges(8, 4).collect::<Vec<_>>(), vec![0..4, 4..8]);
        assert_eq!(ranges(3, usize::MAX).collect::<Vec<_>>(), vec![0..3]);
        assert_eq!(ranges(2, 0).collect::<Vec<_>>(), vec![0..1, 1..2]);
        assert_eq!(ranges(0, 4).count(), 0);
    }
}
