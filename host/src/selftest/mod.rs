//! `cnnergy selftest`: every GPU correctness check the project has, one line per case.
//!
//! Rules every case follows: fresh random inputs (the seed is printed so a failure can
//! be replayed), outputs poisoned with NaN before the launch, every output element
//! checked (a NaN left anywhere fails), tolerance as relative L2 against an f64 CPU
//! reference.

use std::time::Instant;

use rand::{Rng, SeedableRng};

use crate::error::Error;
use crate::gpu::Gpu;
use crate::ops::{Act, Conv2d, Epilogue};

mod conv;
mod core;
mod depthwise;
mod gemm;
mod memory;
pub mod profile;
mod smallm;
mod tensorcore;
mod vector;

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
        if filter.is_some_and(|f| !matches(&name, f)) {
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

/// Whether case `name` is selected by `filter`: the name contains it, or, for a filter
/// starting with `^`, starts with the rest (`^core/` without `tensorcore/…`).
pub fn matches(name: &str, filter: &str) -> bool {
    match filter.strip_prefix('^') {
        Some(prefix) => name.starts_with(prefix),
        None => name.contains(filter),
    }
}

/// Every case name in run order (kernel cases, then the profiler checks): what `--filter`
/// matches. Needs no GPU, so scripts can split a run (e.g. under compute-sanitizer).
pub fn case_names() -> Vec<String> {
    cases().into_iter().map(|(n, _)| n).chain(profile::CASES.iter().map(|(n, _)| n.to_string())).collect()
}

/// A case: given the GPU and a fresh seed, returns a one-line summary of the error
/// figures, or the failure.
pub type CaseFn = Box<dyn Fn(&Gpu, u64) -> std::result::Result<String, Error>>;

/// Every case, in the order they run. Each kernel family registers its own.
fn cases() -> Vec<(String, CaseFn)> {
    let mut v: Vec<(String, CaseFn)> = Vec::new();
    vector::cases(&mut v);
    core::cases(&mut v);
    memory::cases(&mut v);
    conv::cases(&mut v);
    gemm::cases(&mut v);
    tensorcore::cases(&mut v);
    depthwise::cases(&mut v);
    smallm::cases(&mut v);
    v
}

/// Case-name form of an epilogue: `bias+bn+res+relu`, or `plain`.
pub(crate) fn epi_name(e: &Epilogue) -> String {
    let mut s = String::new();
    if e.bias {
        s += "+bias";
    }
    if e.scale_shift {
        s += "+bn";
    }
    if e.residual {
        s += "+res";
    }
    s += match e.act {
        Act::None => "",
        Act::Relu => "+relu",
        Act::Clip { .. } => "+relu6",
        Act::Sigmoid => "+sigmoid",
        Act::Tanh => "+tanh",
    };
    if s.is_empty() {
        "plain".into()
    } else {
        s[1..].into()
    }
}

/// `n2 19->70 13x11 k3x3 s2x2 p1,1,1,1 d2x2 g2`, defaults left out.
pub(crate) fn shape_name(c: &Conv2d) -> String {
    let mut s = format!("n{} {}->{} {}x{} k{}x{}", c.n, c.c_in, c.c_out, c.h, c.w, c.kh, c.kw);
    if (c.stride_h, c.stride_w) != (1, 1) {
        s += &format!(" s{}x{}", c.stride_h, c.stride_w);
    }
    if (c.pad_t, c.pad_l, c.pad_b, c.pad_r) != (0, 0, 0, 0) {
        s += &format!(" p{},{},{},{}", c.pad_t, c.pad_l, c.pad_b, c.pad_r);
    }
    if (c.dil_h, c.dil_w) != (1, 1) {
        s += &format!(" d{}x{}", c.dil_h, c.dil_w);
    }
    if c.groups != 1 {
        s += &format!(" g{}", c.groups);
    }
    s
}

/// Device-buffer helpers shared by the case files.
pub(crate) mod buf {
    use cudarc::driver::{CudaSlice, DeviceRepr, ValidAsZeroBits};

    use super::POISON_F32;
    use crate::error::{Error, Result};
    use crate::gpu::Gpu;

    pub fn upload<T: DeviceRepr + ValidAsZeroBits>(gpu: &Gpu, v: &[T]) -> Result<CudaSlice<T>> {
        gpu.stream.clone_htod(v).map_err(Error::driver("copying inputs to the GPU"))
    }

    /// An output buffer of `n` f32, every element poisoned.
    pub fn poisoned_f32(gpu: &Gpu, n: usize) -> Result<CudaSlice<f32>> {
        upload(gpu, &vec![POISON_F32; n])
    }

    /// Waits for the stream and copies `d` back; a kernel fault surfaces here.
    pub fn download<T: DeviceRepr + ValidAsZeroBits + Default + Clone>(gpu: &Gpu, d: &CudaSlice<T>) -> Result<Vec<T>> {
        gpu.stream.synchronize().map_err(Error::driver("running the kernel"))?;
        gpu.stream.clone_dtoh(d).map_err(Error::driver("copying the output back"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_anywhere_or_anchored() {
        assert!(matches("tensorcore/conv 3x3", "core/"));
        assert!(!matches("tensorcore/conv 3x3", "^core/"));
        assert!(matches("core/cp_async", "^core/"));
        assert!(matches("pool/max 3x3", "3x3"));
        assert!(!matches("pool/max 3x3", "^3x3"));
    }

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
