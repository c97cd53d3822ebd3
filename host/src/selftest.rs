//! `cnnergy selftest`: every GPU correctness check the project has, one line per case.
//!
//! Rules every case follows: fresh random inputs (the seed is printed so a failure can
//! be replayed), outputs poisoned with NaN before the launch, every output element
//! checked (a NaN left anywhere fails), tolerance as relative L2 against an f64 CPU
//! reference.

use std::time::Instant;

use cudarc::driver::{LaunchConfig, PushKernelArg};
use rand::{Rng, SeedableRng};

use crate::error::Error;
use crate::gpu::Gpu;
use crate::registry;

/// A quiet NaN with a payload, so an unwritten element is recognisable in a dump.
pub const POISON_F32: f32 = f32::from_bits(0x7fc0_dead);

/// One checked case.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub name: String,
    pub passed: bool,
    /// Error figures on success, what went wrong on failure.
    pub detail: String,
    pub millis: f64,
}

/// All cases run, in order.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub cases: Vec<CaseResult>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed).count()
    }
    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }
}

/// Compares a GPU output with its f64 reference: every element must be finite where
/// the reference is, and ‖out − ref‖₂ / ‖ref‖₂ must not exceed `tol`.
/// Returns the relative L2 error, or a description of the first bad element.
pub fn compare(out: &[f32], reference: &[f64], tol: f64) -> std::result::Result<f64, String> {
    if out.len() != reference.len() {
        return Err(format!("length {} != reference length {}", out.len(), reference.len()));
    }
    let (mut num, mut den) = (0f64, 0f64);
    let mut worst = (0usize, 0f64);
    for (i, (&o, &r)) in out.iter().zip(reference).enumerate() {
        if !o.is_finite() && r.is_finite() {
            let what = if o.to_bits() == POISON_F32.to_bits() { "never written (poison)" } else { "not finite" };
            return Err(format!("element {i} is {o} ({what}), reference {r}"));
        }
        let d = o as f64 - r;
        num += d * d;
        den += r * r;
        if d.abs() > worst.1 {
            worst = (i, d.abs());
        }
    }
    let rel = if den == 0.0 { num.sqrt() } else { (num / den).sqrt() };
    if rel.is_nan() || rel > tol {
        return Err(format!(
            "relative L2 error {rel:.3e} > {tol:.0e} (worst element {}: got {}, want {})",
            worst.0, out[worst.0], reference[worst.0]
        ));
    }
    Ok(rel)
}

/// Runs every case whose name contains `filter`, calling `on_case` as each finishes.
pub fn run(gpu: &Gpu, filter: Option<&str>, seed: u64, mut on_case: impl FnMut(&CaseResult)) -> Report {
    let mut report = Report::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for (name, case) in cases() {
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let case_seed: u64 = rng.random();
        let t = Instant::now();
        let outcome = case(gpu, case_seed);
        let res = CaseResult {
            name: name.clone(),
            passed: outcome.is_ok(),
            detail: match outcome {
                Ok(d) => d,
                Err(e) => format!("{e} [seed {case_seed:#x}]"),
            },
            millis: t.elapsed().as_secs_f64() * 1e3,
        };
        on_case(&res);
        report.cases.push(res);
    }
    report
}

type CaseFn = Box<dyn Fn(&Gpu, u64) -> std::result::Result<String, Error>>;

fn cases() -> Vec<(String, CaseFn)> {
    let mut v: Vec<(String, CaseFn)> = Vec::new();
    // Odd sizes, one that is not a multiple of the block, and grids smaller than the
    // data so the grid-stride loop is exercised.
    for &(n, grid_cap) in &[(1usize, 0u32), (31, 0), (257, 1), (1_000_003, 0), (16_777_259, 64)] {
        v.push((
            format!("vector/axpy_f32 n={n}{}", if grid_cap > 0 { format!(" grid<={grid_cap}") } else { String::new() }),
            Box::new(move |gpu, seed| axpy_case(gpu, n, grid_cap, seed)),
        ));
    }
    v
}

fn drv(context: &'static str) -> impl FnOnce(cudarc::driver::DriverError) -> Error {
    Error::driver(context)
}

fn axpy_case(gpu: &Gpu, n: usize, grid_cap: u32, seed: u64) -> std::result::Result<String, Error> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let a: f32 = rng.random_range(-2.0..2.0);
    let x: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let s = &gpu.stream;
    let xd = s.clone_htod(&x).map_err(drv("copying inputs"))?;
    let yd = s.clone_htod(&y).map_err(drv("copying inputs"))?;
    let mut od = s.clone_htod(&vec![POISON_F32; n]).map_err(drv("poisoning the output"))?;
    let f = registry::function(&gpu.module, "axpy_f32")?;
    let block = 256u32;
    let mut grid = (n as u32).div_ceil(block);
    if grid_cap > 0 {
        grid = grid.min(grid_cap);
    }
    let cfg = LaunchConfig { grid_dim: (grid, 1, 1), block_dim: (block, 1, 1), shared_mem_bytes: 0 };
    let n32 = n as u32;
    let mut b = s.launch_builder(&f);
    b.arg(&n32).arg(&a).arg(&xd).arg(&yd).arg(&mut od);
    // SAFETY: argument types and order match `axpy_f32`'s signature; buffers hold n f32.
    unsafe { b.launch(cfg) }.map_err(drv("launching axpy_f32"))?;
    let out = s.clone_dtoh(&od).map_err(drv("copying the output back"))?;
    s.synchronize().map_err(drv("running axpy_f32"))?;
    let reference: Vec<f64> = x.iter().zip(&y).map(|(&x, &y)| a as f64 * x as f64 + y as f64).collect();
    let rel = compare(&out, &reference, 1e-6).map_err(Error::Invalid)?;
    Ok(format!("rel_l2={rel:.1e} grid={grid}x{block}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_rejects_poison_and_nan_and_large_errors() {
        let r = [1.0f64, 2.0, 3.0];
        assert!(compare(&[1.0, 2.0, 3.0], &r, 1e-6).is_ok());
        let e = compare(&[1.0, POISON_F32, 3.0], &r, 1e-6).unwrap_err();
        assert!(e.contains("element 1") && e.contains("poison"), "{e}");
        assert!(compare(&[f32::NAN, 2.0, 3.0], &r, 1.0).is_err());
        assert!(compare(&[1.0, 2.0, 3.1], &r, 1e-3).is_err());
        assert!(compare(&[1.0, 2.0], &r, 1e-3).is_err());
        // All-zero reference: absolute error is used, so a zero output passes and garbage fails.
        assert!(compare(&[0.0, 0.0], &[0.0, 0.0], 1e-6).is_ok());
        assert!(compare(&[0.0, 1.0], &[0.0, 0.0], 1e-6).is_err());
    }
}
