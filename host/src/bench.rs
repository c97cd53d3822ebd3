//! Timing kernels on the GPU: CUDA events around each run, warm-up first, the median
//! of many runs, and the device's copy bandwidth measured the same way so memory-bound
//! kernels can be judged against it in the same process.

use cudarc::driver::sys::CUevent_flags;

use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// Timing of one launch sequence.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub median_us: f64,
    pub min_us: f64,
    pub runs: usize,
}

/// Times `launch` (which enqueues one run on `gpu.stream`, typically rotating among
/// several input sets so the L2 cache does not serve repeats): `warmup` runs first, then
/// runs until `min_runs` and `min_total_ms` are both reached (capped at 2000 runs).
pub fn time(
    gpu: &Gpu,
    warmup: usize,
    min_runs: usize,
    min_total_ms: f64,
    mut launch: impl FnMut(usize) -> Result<()>,
) -> Result<Timing> {
    let ev = || gpu.ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).map_err(Error::driver("creating an event"));
    let (start, stop) = (ev()?, ev()?);
    for i in 0..warmup {
        launch(i)?;
    }
    gpu.stream.synchronize().map_err(Error::driver("warm-up"))?;
    let mut samples = Vec::with_capacity(min_runs);
    let mut total = 0.0;
    let mut i = 0;
    while (samples.len() < min_runs || total < min_total_ms) && samples.len() < 2000 {
        start.record(&gpu.stream).map_err(Error::driver("recording an event"))?;
        launch(i)?;
        stop.record(&gpu.stream).map_err(Error::driver("recording an event"))?;
        stop.synchronize().map_err(Error::driver("running the timed kernel"))?;
        let ms = start.elapsed_ms(&stop).map_err(Error::driver("reading an event"))? as f64;
        samples.push(ms * 1e3);
        total += ms;
        i += 1;
    }
    Ok(summarise(&mut samples))
}

fn summarise(samples: &mut [f64]) -> Timing {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let median_us = if n % 2 == 1 { samples[n / 2] } else { 0.5 * (samples[n / 2 - 1] + samples[n / 2]) };
    Timing { median_us, min_us: samples[0], runs: n }
}

/// Device-to-device copy bandwidth in GB/s (bytes read + bytes written), from a copy of
/// `bytes` bytes (use well above the L2 size).
pub fn copy_bandwidth_gbs(gpu: &Gpu, bytes: usize) -> Result<f64> {
    let n = bytes / 4;
    let src = gpu.stream.alloc_zeros::<f32>(n).map_err(Error::driver("allocating the copy buffer"))?;
    let mut dst = gpu.stream.alloc_zeros::<f32>(n).map_err(Error::driver("allocating the copy buffer"))?;
    let t = time(gpu, 3, 20, 50.0, |_| {
        gpu.stream.memcpy_dtod(&src, &mut dst).map_err(Error::driver("copying device to device"))
    })?;
    Ok(2.0 * (n * 4) as f64 / (t.median_us * 1e-6) / 1e9)
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_of_odd_and_even_counts() {
        let t = super::summarise(&mut [5.0, 1.0, 3.0]);
        assert_eq!((t.median_us, t.min_us, t.runs), (3.0, 1.0, 3));
        let t = super::summarise(&mut [4.0, 1.0, 3.0, 2.0]);
        assert_eq!(t.median_us, 2.5);
    }
}
