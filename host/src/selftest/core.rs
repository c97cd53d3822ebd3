//! Self-test cases for the device-core self-test kernels (`kernels/src/selftest.rs`; the
//! contract — signatures, launch configurations, expected outputs, tolerances — is
//! `kernels/SELFTEST.md`). Every kernel there is covered except `core_asm_coverage`,
//! which must never be launched (it hangs on a named barrier).
//!
//! Each case draws fresh inputs from its seed, poisons every output (NaN bits for `f32`,
//! `0xDEADBEEF` for `u32`) and checks every element against a CPU expectation: bitwise
//! where the contract says exact, otherwise with the documented bound (ulp of the exact
//! f64 result, relative or absolute). The cases run against the module the GPU loaded
//! (`gpu.target`); the other module is not reachable from here.

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use half::{bf16, f16};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::buf::{download, poisoned_f32, upload};
use super::{compare, CaseFn, POISON_F32};
use crate::error::Error;
use crate::gpu::Gpu;
use crate::registry::{self, Target};

/// Poison for `u32` outputs.
const POISON_U32: u32 = 0xDEAD_BEEF;

pub(super) fn cases(v: &mut Vec<(String, CaseFn)>) {
    // (n, grid, block): empty and tiny inputs, blocks left without data, one block of
    // 1024, a grid-stride loop over many blocks.
    for &(n, g, b) in &[
        (0usize, 2u32, 32u32),
        (1, 1, 32),
        (31, 4, 32),
        (1000, 3, 64),
        (99_999, 391, 256),
        (100_000, 7, 96),
        (100_000, 1, 1024),
    ] {
        v.push((
            format!("core/core_warp_reduce_f32 n={n} grid={g} block={b}"),
            Box::new(move |gpu, seed| warp_reduce(gpu, n, g, b, seed)),
        ));
    }
    for &(n, b, neg) in
        &[(0usize, 32u32, false), (1, 32, false), (1000, 256, false), (5000, 96, true), (16_384, 1024, false)]
    {
        let tag = if neg { " all-negative-i32" } else { "" };
        v.push((
            format!("core/core_atomics n={n} block={b}{tag}"),
            Box::new(move |gpu, seed| atomics(gpu, n, b, neg, seed)),
        ));
    }
    for &(n, cap) in &[(37usize, 1u32), (300_001, 0), (1_000_000, 40)] {
        v.push((
            format!("core/core_f16_roundtrip n={n}{}", cap_tag(cap)),
            Box::new(move |gpu, seed| f16_roundtrip(gpu, n, cap, seed)),
        ));
    }
    for &(sweep, cap) in &[(64usize, 1u32), (1 << 19, 0), (1 << 19, 60)] {
        for ext in [false, true] {
            let k = if ext { "core_math_ext_f32" } else { "core_math_f32" };
            v.push((
                format!("core/{k} sweep={sweep}{}", cap_tag(cap)),
                Box::new(move |gpu, seed| math(gpu, ext, sweep, cap, seed)),
            ));
        }
    }
    for &(n, cap) in &[(13usize, 1u32), (500_009, 0), (1_000_000, 50)] {
        v.push((
            format!("core/core_int_ops n={n}{}", cap_tag(cap)),
            Box::new(move |gpu, seed| int_ops(gpu, n, cap, seed)),
        ));
    }
    for pattern in VotePattern::ALL {
        v.push((
            format!("core/core_warp_vote {}", pattern.name()),
            Box::new(move |gpu, seed| warp_vote(gpu, pattern, seed)),
        ));
    }
    for &(n, b, cap) in
        &[(1usize, 1u32, 0u32), (7, 32, 0), (1000, 33, 0), (4099, 128, 3), (65_538, 1024, 5), (1_000_003, 256, 0)]
    {
        v.push((
            format!("core/core_smem_copy_f32 n={n} block={b}{}", cap_tag(cap)),
            Box::new(move |gpu, seed| smem_copy(gpu, n, b, cap, seed)),
        ));
    }
    for mma in [Mma::F16, Mma::Bf16, Mma::Tf32] {
        v.push((format!("core/{} ints", mma.kernel()), Box::new(move |gpu, seed| mma_case(gpu, mma, false, seed))));
    }
    v.push((
        format!("core/{} normals", Mma::F16.kernel()),
        Box::new(move |gpu, seed| mma_case(gpu, Mma::F16, true, seed)),
    ));
    v.push(("core/core_sm90_elect".to_string(), Box::new(sm90_elect)));
}

fn cap_tag(cap: u32) -> String {
    if cap > 0 {
        format!(" grid<={cap}")
    } else {
        String::new()
    }
}

// ---------------------------------------------------------------------------------------
// Launch and comparison plumbing.

fn cfg(grid: u32, block: u32, smem: u32) -> LaunchConfig {
    LaunchConfig { grid_dim: (grid, 1, 1), block_dim: (block, 1, 1), shared_mem_bytes: smem }
}

/// Blocks for `n` items at `per_block` items a block (at least 1), capped at `cap` if
/// `cap > 0` so that the grid-stride loop runs more than once.
fn grid_for(n: usize, per_block: u32, cap: u32) -> u32 {
    let g = (n as u64).div_ceil(per_block as u64).clamp(1, u32::MAX as u64) as u32;
    if cap > 0 {
        g.min(cap)
    } else {
        g
    }
}

fn poisoned_u32(gpu: &Gpu, n: usize) -> Result<CudaSlice<u32>, Error> {
    upload(gpu, &vec![POISON_U32; n])
}

/// Uploads `v`, or one dummy element if `v` is empty (a zero-byte allocation fails).
fn upload_nonempty<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits + Default + Clone>(
    gpu: &Gpu,
    v: &[T],
) -> Result<CudaSlice<T>, Error> {
    if v.is_empty() {
        upload(gpu, &[T::default()])
    } else {
        upload(gpu, v)
    }
}

fn invalid(kernel: &str, msg: String) -> Error {
    Error::Invalid(format!("{kernel}: {msg}"))
}

fn poison_note_u32(o: u32) -> &'static str {
    if o == POISON_U32 {
        " (poison: never written?)"
    } else {
        ""
    }
}

fn poison_note_f32(o: f32) -> &'static str {
    if o.to_bits() == POISON_F32.to_bits() {
        " (poison: never written)"
    } else {
        ""
    }
}

/// Every `out[i] == want[i]`; otherwise the first mismatch (labelled by `label(i)`) and
/// the number of mismatches.
fn check_u32(out: &[u32], want: &[u32], label: impl Fn(usize) -> String) -> Result<(), String> {
    if out.len() != want.len() {
        return Err(format!("length {} != expected {}", out.len(), want.len()));
    }
    let bad = out.iter().zip(want).filter(|(o, w)| o != w).count();
    match out.iter().zip(want).position(|(o, w)| o != w) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{bad} of {} wrong; first: {}: got {:#x}{}, want {:#x}",
            out.len(),
            label(i),
            out[i],
            poison_note_u32(out[i]),
            want[i]
        )),
    }
}

/// A NaN the kernel wrote: any NaN but the poison pattern.
fn written_nan(o: f32) -> bool {
    o.is_nan() && o.to_bits() != POISON_F32.to_bits()
}

/// Same `f32`: bit-identical — or, when `zero_sign_free`, equal as values (so
/// `-0 == +0`). An expected NaN matches any written NaN (not the poison); an expected
/// poison (a region that must stay untouched) only the poison bits.
fn same_f32(o: f32, w: f32, zero_sign_free: bool) -> bool {
    if w.to_bits() == POISON_F32.to_bits() {
        o.to_bits() == w.to_bits()
    } else if w.is_nan() {
        written_nan(o)
    } else if zero_sign_free {
        o == w
    } else {
        o.to_bits() == w.to_bits()
    }
}

/// Exact `f32` comparison of every element ([`same_f32`]).
fn check_f32(out: &[f32], want: &[f32], zero_sign_free: bool, label: impl Fn(usize) -> String) -> Result<(), String> {
    if out.len() != want.len() {
        return Err(format!("length {} != expected {}", out.len(), want.len()));
    }
    let ok = |(o, w): (&f32, &f32)| same_f32(*o, *w, zero_sign_free);
    let bad = out.iter().zip(want).filter(|p| !ok(*p)).count();
    match out.iter().zip(want).position(|p| !ok(p)) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{bad} of {} wrong; first: {}: got {:e} [{:#010x}]{}, want {:e} [{:#010x}] ({} ulp apart)",
            out.len(),
            label(i),
            out[i],
            out[i].to_bits(),
            poison_note_f32(out[i]),
            want[i],
            want[i].to_bits(),
            ulp_dist(out[i], want[i]),
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Floating-point helpers (unit-tested below).

/// Position of `x` on the ordered ladder of `f32` bit patterns: `±0` → 0, the smallest
/// subnormal → ±1, …, `f32::MAX` → ±0x7f7f_ffff, `±inf` → ±0x7f80_0000.
fn ordered(x: f32) -> i64 {
    let b = x.to_bits();
    let mag = (b & 0x7fff_ffff) as i64;
    if b >> 31 == 1 {
        -mag
    } else {
        mag
    }
}

/// Number of representable `f32` steps between `a` and `b` (`u64::MAX` if either is NaN).
fn ulp_dist(a: f32, b: f32) -> u64 {
    if a.is_nan() || b.is_nan() {
        return u64::MAX;
    }
    (ordered(a) - ordered(b)).unsigned_abs()
}

const MIN_NORMAL: f64 = f32::MIN_POSITIVE as f64; // 2^-126
const TWO_128: f64 = 3.402_823_669_209_385e38; // 2^128

/// `ulp(y)`: the `f32` spacing at the exact value `y`, i.e. `2^(e−23)` for
/// `2^e ≤ |y| < 2^(e+1)` (`e ≥ −126`), `2^−149` below `2^−126` (subnormals and 0), and
/// `2^104` from `2^128` up. The exponent is read from the bits of `y`.
fn ulp_at(y: f64) -> f64 {
    let a = y.abs();
    if a < MIN_NORMAL {
        return f64::from_bits(((1023 - 149) as u64) << 52);
    }
    let e = (((a.to_bits() >> 52) & 0x7ff) as i64 - 1023).min(127);
    f64::from_bits(((1023 + e - 23) as u64) << 52)
}

/// Error of the `f32` result `o` in units of `ulp(y)`, `y` the exact result. `±inf` counts
/// as `±2^128`, the step after `f32::MAX` on the bit ladder, so an overflow one step early
/// costs about one ulp. Where `y` itself rounds to `±inf` in `f32`, only that infinity
/// scores 0 (anything else ∞); a NaN `y` needs a written NaN `o` (not the poison); a NaN
/// `o` otherwise scores ∞.
fn ulp_err(o: f32, y: f64) -> f64 {
    if y.is_nan() {
        return if written_nan(o) { 0.0 } else { f64::INFINITY };
    }
    if o.is_nan() {
        return f64::INFINITY;
    }
    let yr = y as f32;
    if yr.is_infinite() {
        return if o == yr { 0.0 } else { f64::INFINITY };
    }
    let ov = if o.is_infinite() { TWO_128.copysign(o as f64) } else { o as f64 };
    (ov - y).abs() / ulp_at(y)
}

/// `f16(v)` widened back: round to nearest even.
fn f16r(v: f32) -> f32 {
    f16::from_f32(v).to_f32()
}

/// `bf16(v)` widened back: round to nearest even.
fn bf16r(v: f32) -> f32 {
    bf16::from_f32(v).to_f32()
}

/// `tf32(v)`: 10 mantissa bits, round to nearest, ties away from zero (`cvt.rna.tf32.f32`).
fn tf32r(v: f32) -> f32 {
    if !v.is_finite() {
        return v;
    }
    f32::from_bits((v.to_bits() + 0x1000) & !0x1fff)
}

/// A standard normal sample (Box–Muller).
fn normal(rng: &mut StdRng) -> f32 {
    let u1: f64 = rng.random();
    let u2: f64 = rng.random();
    ((-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

// ---------------------------------------------------------------------------------------
// core_warp_reduce_f32

fn warp_reduce(gpu: &Gpu, n: usize, g: u32, b: u32, seed: u64) -> Result<String, Error> {
    const K: &str = "core_warp_reduce_f32";
    let mut rng = StdRng::seed_from_u64(seed);
    let x: Vec<f32> = (0..n).map(|_| rng.random_range(-100i32..=100) as f32).collect();
    let xd = upload_nonempty(gpu, &x)?;
    let mut od = poisoned_f32(gpu, g as usize)?;
    let f = registry::function(&gpu.module, K)?;
    let n32 = n as u32;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&n32).arg(&xd).arg(&mut od);
    // SAFETY: (n: u32, x: *const f32, out_per_block: *mut f32) as in SELFTEST.md; x holds
    // max(n, 1) f32, out one f32 per block; block a multiple of 32.
    unsafe { l.launch(cfg(g, b, 0)) }.map_err(Error::driver("launching core_warp_reduce_f32"))?;
    let out = download(gpu, &od)?;
    let want = warp_reduce_expected(&x, g, b);
    check_f32(&out, &want, true, |i| format!("block {i}")).map_err(|e| invalid(K, e))?;
    Ok(format!("exact, {g} block sums, {}", gpu.target.name()))
}

/// `Σ x[i]` over `(i / b) % g == blk`, for each block `blk < g` (exact in f64, then f32).
fn warp_reduce_expected(x: &[f32], g: u32, b: u32) -> Vec<f32> {
    let mut s = vec![0f64; g as usize];
    for (i, &v) in x.iter().enumerate() {
        s[(i / b as usize) % g as usize] += v as f64;
    }
    s.into_iter().map(|v| v as f32).collect()
}

// ---------------------------------------------------------------------------------------
// core_atomics

fn atomics(gpu: &Gpu, n: usize, b: u32, all_negative: bool, seed: u64) -> Result<String, Error> {
    const K: &str = "core_atomics";
    let mut rng = StdRng::seed_from_u64(seed);
    let x: Vec<u32> = (0..n).map(|_| rng.random::<u32>() | if all_negative { 0x8000_0000 } else { 0 }).collect();
    let xd = upload_nonempty(gpu, &x)?;
    let mut ou = poisoned_u32(gpu, 5)?;
    let mut of = poisoned_f32(gpu, 3)?;
    let f = registry::function(&gpu.module, K)?;
    let n32 = n as u32;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&n32).arg(&xd).arg(&mut ou).arg(&mut of);
    // SAFETY: (n, x: *const u32, out_u32: *mut u32 [5], out_f32: *mut f32 [3]); grid 1.
    unsafe { l.launch(cfg(1, b, 0)) }.map_err(Error::driver("launching core_atomics"))?;
    let (gu, gf) = (download(gpu, &ou)?, download(gpu, &of)?);
    let (wu, wf) = atomics_expected(&x);
    const NAMES_U: [&str; 5] = ["Σx (atom.add)", "max x (u32)", "max x (i32)", "n (CAS loop)", "n (shared red.add)"];
    const NAMES_F: [&str; 3] = ["Σv (f32 add)", "max(v-511.5)", "min(v-511.5)"];
    check_u32(&gu, &wu, |i| format!("out_u32[{i}] = {}", NAMES_U[i])).map_err(|e| invalid(K, e))?;
    check_f32(&gf, &wf, false, |i| format!("out_f32[{i}] = {}", NAMES_F[i])).map_err(|e| invalid(K, e))?;
    Ok(format!("exact, {}", gpu.target.name()))
}

/// `out_u32`, `out_f32` of `core_atomics` for input `x` (n ≤ 16384 keeps the f32 sum exact).
fn atomics_expected(x: &[u32]) -> ([u32; 5], [f32; 3]) {
    let n = x.len() as u32;
    let sum = x.iter().fold(0u32, |a, &v| a.wrapping_add(v));
    let max_u = x.iter().copied().max().unwrap_or(0);
    let max_i = x.iter().map(|&v| v as i32).max().unwrap_or(i32::MIN) as u32;
    let vs = x.iter().map(|&v| (v & 1023) as f32 - 511.5);
    // The kernel's accumulator starts at +0.0; `Iterator::sum` of floats starts at -0.0,
    // which differs bitwise for n = 0.
    let fsum = x.iter().fold(0.0f64, |a, &v| a + (v & 1023) as f64) as f32;
    let fmax = vs.clone().fold(f32::NEG_INFINITY, f32::max);
    let fmin = vs.fold(f32::INFINITY, f32::min);
    ([sum, max_u, max_i, n, n], [fsum, fmax, fmin])
}

// ---------------------------------------------------------------------------------------
// core_f16_roundtrip

fn f16_roundtrip(gpu: &Gpu, n: usize, cap: u32, seed: u64) -> Result<String, Error> {
    const K: &str = "core_f16_roundtrip";
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = f16_specials();
    while x.len() < n {
        let v = match rng.random_range(0..4u32) {
            // Any bit pattern: every exponent, NaNs, infinities, subnormals.
            0 => f32::from_bits(rng.random()),
            // Exponents around the f16 range (subnormal 2^-24 up to overflow past 65504).
            1 => f32::from_bits(
                (rng.random::<u32>() & 0x807f_ffff) | (((127 - 27 + rng.random_range(0..45u32)) & 0xff) << 23),
            ),
            // Exact f16 ties (13 dropped bits = 0x1000) in and near the f16 range.
            2 => f32::from_bits(
                (rng.random::<u32>() & 0x807f_e000) | 0x1000 | ((127 - 14 + rng.random_range(0..32u32)) << 23),
            ),
            // Exact bf16 ties (16 dropped bits = 0x8000) anywhere.
            _ => f32::from_bits((rng.random::<u32>() & 0xffff_0000) | 0x8000),
        };
        x.push(v);
    }
    x.truncate(n);
    let xd = upload(gpu, &x)?;
    let mut od = poisoned_f32(gpu, 4 * n)?;
    let f = registry::function(&gpu.module, K)?;
    let block = 256;
    let grid = grid_for(n, block, cap);
    let n32 = n as u32;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&n32).arg(&xd).arg(&mut od);
    // SAFETY: (n, x: *const f32 [n], out: *mut f32 [4n]); any 1-D grid.
    unsafe { l.launch(cfg(grid, block, 0)) }.map_err(Error::driver("launching core_f16_roundtrip"))?;
    let out = download(gpu, &od)?;
    let want: Vec<f32> = x.iter().flat_map(|&v| f16_roundtrip_expected(v)).collect();
    const WHAT: [&str; 4] = ["f16(x)", "bf16(x)", "f16(2x) [half2.hi]", "bf16(-x) [bf16x2.lo]"];
    check_f32(&out, &want, false, |i| format!("{} for x = {:e} [{:#010x}]", WHAT[i % 4], x[i / 4], x[i / 4].to_bits()))
        .map_err(|e| invalid(K, e))?;
    Ok(format!("bitwise, grid={grid}x{block}, {}", gpu.target.name()))
}

fn f16_roundtrip_expected(v: f32) -> [f32; 4] {
    [f16r(v), bf16r(v), f16r(2.0 * v), bf16r(-v)]
}

/// Values at the edges of the f16/bf16 ranges.
fn f16_specials() -> Vec<f32> {
    let mut s = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        65504.0,
        65519.0,
        65520.0,
        -65520.0,
        32760.0,
        32767.0,
        2f32.powi(-24),                           // smallest f16 subnormal
        2f32.powi(-25),                           // tie between 0 and 2^-24 -> 0
        1.5 * 2f32.powi(-24),                     // tie -> 2^-23 (even)
        1023.0 * 2f32.powi(-24),                  // largest f16 subnormal
        2f32.powi(-14),                           // smallest f16 normal
        -2f32.powi(-14) * (1.0 - 2f32.powi(-11)), // rounds up to -2^-14
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::from_bits(0x8000_0001),
        f32::from_bits(0x007f_ffff),
        f32::MAX,
        f32::MIN,
        f32::from_bits(0x7f7f_0000), // largest bf16
        f32::from_bits(0x7f7f_8000), // bf16 tie that rounds to inf
        1.0 + 1.0 / 2048.0,
        1.0 + 3.0 / 2048.0,
        1.0 + 1.0 / 256.0,
        1.0 + 3.0 / 256.0,
        f32::MAX / 2.0,
    ];
    s.extend((0..16).map(|k| f32::from_bits(0x4700_0000 + (k << 12)))); // around 32768 in f16 steps
    s
}

// ---------------------------------------------------------------------------------------
// core_math_f32 / core_math_ext_f32

#[derive(Clone, Copy, PartialEq, Debug)]
enum Unit {
    /// Units of `ulp(y)`.
    Ulp,
    /// A relative or absolute error, printed as a power of two.
    Pow2,
}

/// One checked output element: which statistic it feeds, its error and whether that is
/// within the bound.
#[derive(Clone, Copy, Debug)]
struct Measure {
    key: &'static str,
    unit: Unit,
    err: f64,
    ok: bool,
    want: f64,
}

fn meas(key: &'static str, unit: Unit, err: f64, ok: bool, want: f64) -> Measure {
    Measure { key, unit, err, ok, want }
}

fn rel_err(o: f32, y: f64) -> f64 {
    ((o as f64) - y).abs() / y.abs()
}

fn chk_exp(x: f32, o: f32) -> Measure {
    let y = (x as f64).exp();
    let e = ulp_err(o, y);
    meas("exp", Unit::Ulp, e, e <= 2.0, y)
}

fn chk_tanh(x: f32, o: f32) -> Measure {
    let y = (x as f64).tanh();
    let e = ulp_err(o, y);
    meas("tanh", Unit::Ulp, e, e <= 3.0, y)
}

fn chk_sqrt(x: f32, o: f32) -> Measure {
    let w = x.sqrt();
    let ok = same_f32(o, w, false);
    meas("sqrt", Unit::Ulp, if ok { 0.0 } else { ulp_dist(o, w) as f64 }, ok, w as f64)
}

fn chk_rsqrt(x: f32, o: f32) -> Measure {
    let y = 1.0 / (x as f64).sqrt();
    if y.is_nan() || y.is_infinite() || y == 0.0 {
        let ok = if y.is_nan() { written_nan(o) } else { o.to_bits() == (y as f32).to_bits() };
        return meas("rsqrt(rel)", Unit::Pow2, 0.0, ok, y);
    }
    let r = rel_err(o, y);
    meas("rsqrt(rel)", Unit::Pow2, r, r <= 2f64.powi(-22), y)
}

/// `≤ 2 + 1.3·|x|` ulp where `e^x ≥ 2^-126`; below, the result is flushed to `+0` (or, at
/// the boundary, may land on a normal within the same bound measured at `2^-126`).
fn chk_exp_fast(x: f32, o: f32) -> Measure {
    let y = (x as f64).exp();
    // At x = ±inf the result must be exact (+inf / +0).
    let bound = if x.is_finite() { 2.0 + 1.3 * (x as f64).abs() } else { 0.0 };
    if y < MIN_NORMAL {
        let ok = o.to_bits() == 0 || ((o as f64 - y).abs() <= bound * ulp_at(MIN_NORMAL));
        return meas("exp_fast(ulp-1.3|x|)", Unit::Ulp, 0.0, ok, y);
    }
    let e = ulp_err(o, y);
    meas("exp_fast(ulp-1.3|x|)", Unit::Ulp, e - 1.3 * (x as f64).abs(), e <= bound, y)
}

/// `≤ 3 ulp`; where the exact result is below `2^-126` (x < −87.3) a flush to 0 is also
/// accepted (`1/(1+e^-x)` with `e^-x = inf`).
fn chk_sigmoid(x: f32, o: f32) -> Measure {
    let y = 1.0 / (1.0 + (-(x as f64)).exp());
    let e = ulp_err(o, y);
    let flushed = y < MIN_NORMAL && o.to_bits() == 0;
    meas("sigmoid", Unit::Ulp, if flushed { 0.0 } else { e }, e <= 3.0 || flushed, y)
}

fn chk_ln(x: f32, o: f32) -> Measure {
    let y = (x.abs() as f64).ln();
    if y == 0.0 {
        return meas("ln|x|", Unit::Ulp, 0.0, o == 0.0, y);
    }
    let e = ulp_err(o, y);
    meas("ln|x|", Unit::Ulp, e, e <= 2.0, y)
}

/// `≤ 3 ulp` where `|e^x − 1| ≥ 2^-126`; below (subnormal or zero x), within `2^-126`.
fn chk_exp_m1(x: f32, o: f32) -> Measure {
    let y = (x as f64).exp_m1();
    if y.abs() < MIN_NORMAL {
        return meas("exp_m1", Unit::Ulp, 0.0, (o as f64 - y).abs() <= MIN_NORMAL, y);
    }
    let e = ulp_err(o, y);
    meas("exp_m1", Unit::Ulp, e, e <= 3.0, y)
}

/// Relative error `≤ 2^-10.9` for `|x| > 1e-30`; below, within `1e-30` absolute.
fn chk_tanh_fast(x: f32, o: f32) -> Measure {
    let y = (x as f64).tanh();
    if (x.abs() as f64) <= 1e-30 {
        return meas("tanh_fast(rel)", Unit::Pow2, 0.0, (o as f64 - y).abs() <= 1e-30, y);
    }
    let r = rel_err(o, y);
    meas("tanh_fast(rel)", Unit::Pow2, r, r <= 2f64.powf(-10.9), y)
}

/// Absolute error `≤ 2^-21` for `|x|` in (0.5, 2), `≤ 4 ulp` for other normal `|x|`;
/// `-inf` for zero and subnormal `|x|`, `+inf` for infinite `|x|`.
fn chk_ln_fast(x: f32, o: f32) -> Measure {
    let a = x.abs();
    let y = (a as f64).ln();
    if a < f32::MIN_POSITIVE || a.is_infinite() {
        let w = if a.is_infinite() { f32::INFINITY } else { f32::NEG_INFINITY };
        return meas("ln_fast(ulp)", Unit::Ulp, 0.0, o == w, y);
    }
    if a > 0.5 && a < 2.0 {
        let d = (o as f64 - y).abs();
        return meas("ln_fast(abs,0.5..2)", Unit::Pow2, d, d <= 2f64.powi(-21), y);
    }
    let e = ulp_err(o, y);
    meas("ln_fast(ulp)", Unit::Ulp, e, e <= 4.0, y)
}

type Checker = fn(f32, f32) -> Measure;
const MATH: [(&str, Checker); 6] = [
    ("exp", chk_exp),
    ("tanh", chk_tanh),
    ("sqrt", chk_sqrt),
    ("rsqrt", chk_rsqrt),
    ("exp_fast", chk_exp_fast),
    ("sigmoid", chk_sigmoid),
];
const MATH_EXT: [(&str, Checker); 4] =
    [("ln|x|", chk_ln), ("exp_m1", chk_exp_m1), ("tanh_fast", chk_tanh_fast), ("ln_fast|x|", chk_ln_fast)];

/// Inputs: specials, a dense sweep of [-110, 92] (`sweep` points, randomly offset), then
/// as many random points: uniform on the sweep range, uniform on [-4, 4], and
/// log-uniform magnitudes 2^-126 … 2^7 of either sign.
fn math_inputs(rng: &mut StdRng, sweep: usize) -> Vec<f32> {
    let (lo, hi) = (-110.0f64, 92.0f64);
    let mut x = vec![
        0.0f32,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        2.0,
        -2.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
        88.722_83,
        88.722_84,
        88.7229,
        -87.3365,
        -87.34,
        -88.72,
        -88.73,
        -103.972,
        -103.973,
        -104.0,
        9.0,
        9.0001,
        -9.0001,
        1e-30,
        -1e-30,
        1e-20,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1),
        -f32::from_bits(1),
        f32::from_bits(0x007f_ffff),
        1e-40,
        -1e-40,
        1.0f32.next_down(),
        1.0f32.next_up(),
        0.5f32.next_up(),
        2.0f32.next_down(),
        std::f32::consts::LN_2,
        100.5,
        -100.5,
    ];
    let off: f64 = rng.random();
    let step = (hi - lo) / sweep as f64;
    x.extend((0..sweep).map(|i| (lo + (i as f64 + off) * step) as f32));
    x.extend((0..sweep).map(|_| match rng.random_range(0..3u32) {
        0 => rng.random_range(lo..hi) as f32,
        1 => rng.random_range(-4.0f32..4.0),
        _ => {
            let m = 2f32.powf(rng.random_range(-126.0f32..7.0));
            if rng.random() {
                m
            } else {
                -m
            }
        }
    }));
    x
}

fn math(gpu: &Gpu, ext: bool, sweep: usize, cap: u32, seed: u64) -> Result<String, Error> {
    let (k, table): (&str, &[(&str, Checker)]) =
        if ext { ("core_math_ext_f32", &MATH_EXT) } else { ("core_math_f32", &MATH) };
    let w = table.len();
    let mut rng = StdRng::seed_from_u64(seed);
    let x = math_inputs(&mut rng, sweep);
    let n = x.len();
    let xd = upload(gpu, &x)?;
    let mut od = poisoned_f32(gpu, w * n)?;
    let f = registry::function(&gpu.module, k)?;
    let block = 256;
    let grid = grid_for(n, block, cap);
    let n32 = n as u32;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&n32).arg(&xd).arg(&mut od);
    // SAFETY: (n, x: *const f32 [n], out: *mut f32 [w·n]) as in SELFTEST.md; any 1-D grid.
    unsafe { l.launch(cfg(grid, block, 0)) }.map_err(Error::driver("launching a core math kernel"))?;
    let out = download(gpu, &od)?;

    // Worst error per statistic, failures counted, the first one described.
    let mut stats: Vec<(&'static str, Unit, f64)> = Vec::new();
    let (mut bad, mut first) = (0usize, None);
    for (i, &xi) in x.iter().enumerate() {
        for (j, (name, check)) in table.iter().enumerate() {
            let o = out[w * i + j];
            let m = check(xi, o);
            if !m.ok {
                bad += 1;
                if first.is_none() {
                    first = Some(format!(
                        "{name}(x = {xi:e} [{:#010x}]): got {o:e} [{:#010x}]{}, want {:e} (error {:.3e} {})",
                        xi.to_bits(),
                        o.to_bits(),
                        poison_note_f32(o),
                        m.want,
                        m.err,
                        if m.unit == Unit::Ulp { "ulp" } else { "" },
                    ));
                }
            }
            match stats.iter_mut().find(|s| s.0 == m.key) {
                Some(s) => s.2 = s.2.max(m.err),
                None => stats.push((m.key, m.unit, m.err)),
            }
        }
    }
    if let Some(f) = first {
        return Err(invalid(k, format!("{bad} of {} outputs out of bounds; first: {f}", w * n)));
    }
    let summary: Vec<String> = stats
        .iter()
        .map(|(key, unit, e)| match unit {
            Unit::Ulp => format!("{key} {e:.2}"),
            Unit::Pow2 if *e > 0.0 => format!("{key} 2^{:.1}", e.log2()),
            Unit::Pow2 => format!("{key} 0"),
        })
        .collect();
    Ok(format!("n={n} max: {}; grid={grid}x{block}, {}", summary.join(", "), gpu.target.name()))
}

// ---------------------------------------------------------------------------------------
// core_int_ops

fn int_ops(gpu: &Gpu, n: usize, cap: u32, seed: u64) -> Result<String, Error> {
    const K: &str = "core_int_ops";
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x: Vec<u32> =
        vec![0, 1, 6, 7, 8, 31, 32, 0x7fff_ffff, 0x8000_0000, 0x8000_0001, u32::MAX, 0xf000_001f, 0x1000_0000];
    while x.len() < n {
        x.push(match rng.random_range(0..3u32) {
            0 => rng.random(),
            1 => rng.random::<u32>() >> rng.random_range(0..32u32),
            _ => rng.random_range(0..64u32),
        });
    }
    x.truncate(n);
    let xd = upload(gpu, &x)?;
    let mut od = poisoned_u32(gpu, 8 * n)?;
    let f = registry::function(&gpu.module, K)?;
    let block = 128;
    let grid = grid_for(n, block, cap);
    let n32 = n as u32;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&n32).arg(&xd).arg(&mut od);
    // SAFETY: (n, x: *const u32 [n], out: *mut u32 [8n]); any 1-D grid.
    unsafe { l.launch(cfg(grid, block, 0)) }.map_err(Error::driver("launching core_int_ops"))?;
    let out = download(gpu, &od)?;
    let want: Vec<u32> = x.iter().flat_map(|&v| int_ops_expected(v)).collect();
    const WHAT: [&str; 8] = ["v/7", "v%7", "s>>3", "rotl(v,5)", "clz", "popc", "s/-3", "loop sums"];
    check_u32(&out, &want, |i| format!("{} for v = {:#010x}", WHAT[i % 8], x[i / 8])).map_err(|e| invalid(K, e))?;
    Ok(format!("exact, grid={grid}x{block}, {}", gpu.target.name()))
}

fn int_ops_expected(v: u32) -> [u32; 8] {
    let s = v as i32;
    let m = (v & 31) as i64;
    let k = (v >> 28) as i64;
    let sums = (m - 1) * m * (2 * m - 1) / 6 + k * (k + 1) / 2;
    [v / 7, v % 7, (s >> 3) as u32, v.rotate_left(5), v.leading_zeros(), v.count_ones(), (s / -3) as u32, sums as u32]
}

// ---------------------------------------------------------------------------------------
// core_warp_vote

#[derive(Clone, Copy, Debug)]
enum VotePattern {
    /// Full-range random words (all ≠ 0, no 7, almost surely).
    Random,
    /// Small values 0..8: zeros and sevens likely.
    Small,
    /// All non-zero, exactly one 7, low halves around 30000.
    OneSeven,
}

impl VotePattern {
    const ALL: [VotePattern; 3] = [VotePattern::Random, VotePattern::Small, VotePattern::OneSeven];
    fn name(self) -> &'static str {
        match self {
            VotePattern::Random => "random",
            VotePattern::Small => "small",
            VotePattern::OneSeven => "one-seven",
        }
    }
}

fn warp_vote(gpu: &Gpu, pattern: VotePattern, seed: u64) -> Result<String, Error> {
    const K: &str = "core_warp_vote";
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = [0u32; 32];
    match pattern {
        VotePattern::Random => x.iter_mut().for_each(|v| *v = rng.random()),
        VotePattern::Small => x.iter_mut().for_each(|v| *v = rng.random_range(0..8)),
        VotePattern::OneSeven => {
            for v in x.iter_mut() {
                *v = (rng.random::<u32>() & 0xffff_0000) | rng.random_range(29_000..31_000);
            }
            x[rng.random_range(0..32)] = 7;
        }
    }
    let xd = upload(gpu, &x)?;
    let mut od = poisoned_u32(gpu, 320)?;
    let f = registry::function(&gpu.module, K)?;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&xd).arg(&mut od);
    // SAFETY: (x: *const u32 [32], out: *mut u32 [320]); grid 1, block exactly 32.
    unsafe { l.launch(cfg(1, 32, 0)) }.map_err(Error::driver("launching core_warp_vote"))?;
    let out = download(gpu, &od)?;
    let want = warp_vote_expected(&x);
    const WHAT: [&str; 10] = [
        "ballot",
        "all",
        "any",
        "shfl.up 1",
        "shfl.down 3",
        "shfl.idx 31-l",
        "shfl.bfly 5",
        "redux.add",
        "max f32",
        "shfl.idx w8",
    ];
    check_u32(&out, &want, |i| format!("lane {} {}", i / 10, WHAT[i % 10])).map_err(|e| invalid(K, e))?;
    Ok(format!("exact, {}", gpu.target.name()))
}

fn warp_vote_expected(x: &[u32; 32]) -> Vec<u32> {
    let ballot = (0..32).filter(|&l| x[l] & 1 != 0).fold(0u32, |b, l| b | (1 << l));
    let all = x.iter().all(|&v| v != 0) as u32;
    let any = x.contains(&7) as u32;
    let sum = x.iter().fold(0u32, |a, &v| a.wrapping_add(v));
    let fmax = x.iter().map(|&v| (v & 0xffff) as f32 - 30000.0).fold(f32::NEG_INFINITY, f32::max).to_bits();
    (0..32usize)
        .flat_map(|l| {
            [
                ballot,
                all,
                any,
                x[l.saturating_sub(1)],
                if l + 3 < 32 { x[l + 3] } else { x[l] },
                x[31 - l],
                x[l ^ 5],
                sum,
                fmax,
                x[l & !7],
            ]
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// core_smem_copy_f32

fn smem_copy(gpu: &Gpu, n: usize, block: u32, cap: u32, seed: u64) -> Result<String, Error> {
    const K: &str = "core_smem_copy_f32";
    let mut rng = StdRng::seed_from_u64(seed);
    let x: Vec<f32> = (0..n)
        .map(|_| {
            if rng.random() {
                rng.random_range(-1000.0f32..1000.0)
            } else {
                let v = f32::from_bits(rng.random());
                if v.is_nan() {
                    0.25
                } else {
                    v
                }
            }
        })
        .collect();
    // A poisoned tail at least one block chunk (4·block floats) long must stay untouched.
    let tail = 4 * block as usize + 16;
    let xd = upload(gpu, &x)?;
    let mut od = poisoned_f32(gpu, n + tail)?;
    let f = registry::function(&gpu.module, K)?;
    let grid = grid_for(n, 4 * block, cap);
    let n32 = n as u32;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&n32).arg(&xd).arg(&mut od);
    // SAFETY: (n, x: *const f32 [n], out: *mut f32 [n + tail]); dyn smem 16·blockDim.x.
    unsafe { l.launch(cfg(grid, block, 16 * block)) }.map_err(Error::driver("launching core_smem_copy_f32"))?;
    let out = download(gpu, &od)?;
    let mut want: Vec<f32> = x.iter().map(|&v| 2.0f32 * v + 1.0).collect();
    want.resize(n + tail, POISON_F32);
    check_f32(&out, &want, false, |i| {
        if i < n {
            format!("out[{i}] for x = {:e}", x[i])
        } else {
            format!("out[{i}] past n (must stay poisoned)")
        }
    })
    .map_err(|e| invalid(K, e))?;
    Ok(format!("bitwise, tail of {tail} untouched, grid={grid}x{block}, {}", gpu.target.name()))
}

// ---------------------------------------------------------------------------------------
// core_mma_*

#[derive(Clone, Copy, Debug)]
enum Mma {
    F16,
    Bf16,
    Tf32,
}

impl Mma {
    fn kernel(self) -> &'static str {
        match self {
            Mma::F16 => "core_mma_f16_m16n8k16",
            Mma::Bf16 => "core_mma_bf16_m16n8k16",
            Mma::Tf32 => "core_mma_tf32_m16n8k8",
        }
    }
    /// (M, N, K) of the whole product the kernel computes.
    fn shape(self) -> (usize, usize, usize) {
        match self {
            Mma::F16 => (16, 8, 16),
            Mma::Bf16 => (16, 16, 16),
            Mma::Tf32 => (16, 8, 8),
        }
    }
    fn round(self, v: f32) -> f32 {
        match self {
            Mma::F16 => f16r(v),
            Mma::Bf16 => bf16r(v),
            Mma::Tf32 => tf32r(v),
        }
    }
}

/// `C[m][n] = Σ_k round(A[m][k])·round(B[k][n]) (+ C0[m][n])` in f64; row-major, `B[k*n_+n]`.
fn mma_expected(mma: Mma, a: &[f32], b: &[f32], c0: Option<&[f32]>) -> Vec<f64> {
    let (mm, nn, kk) = mma.shape();
    let mut c = vec![0f64; mm * nn];
    for m in 0..mm {
        for n in 0..nn {
            let mut s = c0.map_or(0.0, |c0| c0[m * nn + n] as f64);
            for k in 0..kk {
                s += mma.round(a[m * kk + k]) as f64 * mma.round(b[k * nn + n]) as f64;
            }
            c[m * nn + n] = s;
        }
    }
    c
}

fn mma_case(gpu: &Gpu, mma: Mma, normals: bool, seed: u64) -> Result<String, Error> {
    let k = mma.kernel();
    let (mm, nn, kk) = mma.shape();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut draw = |len: usize, r: i32| -> Vec<f32> {
        (0..len).map(|_| if normals { normal(&mut rng) } else { rng.random_range(-r..=r) as f32 }).collect()
    };
    let a = draw(mm * kk, 8);
    let b = draw(kk * nn, 8);
    let c0 = matches!(mma, Mma::Tf32).then(|| draw(mm * nn, 100));
    let (ad, bd) = (upload(gpu, &a)?, upload(gpu, &b)?);
    let cd = c0.as_ref().map(|c| upload(gpu, c)).transpose()?;
    let mut od = poisoned_f32(gpu, mm * nn)?;
    let f = registry::function(&gpu.module, k)?;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&ad).arg(&bd);
    if let Some(cd) = &cd {
        l.arg(cd);
    }
    l.arg(&mut od);
    // SAFETY: (a, b[, c], out) with the sizes of SELFTEST.md for this kernel; grid 1, block 32.
    unsafe { l.launch(cfg(1, 32, 0)) }.map_err(Error::driver("launching a core mma kernel"))?;
    let out = download(gpu, &od)?;
    let reference = mma_expected(mma, &a, &b, c0.as_deref());
    if normals {
        let rel = compare(&out, &reference, 1e-6).map_err(|e| invalid(k, e))?;
        return Ok(format!("rel_l2={rel:.1e}, {}", gpu.target.name()));
    }
    let want: Vec<f32> = reference.iter().map(|&r| r as f32).collect();
    check_f32(&out, &want, true, |i| format!("C[{}][{}]", i / nn, i % nn)).map_err(|e| invalid(k, e))?;
    Ok(format!("exact {mm}x{nn}x{kk}, {}", gpu.target.name()))
}

// ---------------------------------------------------------------------------------------
// core_sm90_elect

fn sm90_elect(gpu: &Gpu, _seed: u64) -> Result<String, Error> {
    const K: &str = "core_sm90_elect";
    if gpu.target != Target::Sm90a {
        return Ok(format!("skipped on {} (sm_90a module only)", gpu.target.name()));
    }
    let mut od = poisoned_u32(gpu, 192)?;
    let f = registry::function(&gpu.module, K)?;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&mut od);
    // SAFETY: (out: *mut u32 [192]); grid 1, block 64, no cluster.
    unsafe { l.launch(cfg(1, 64, 0)) }.map_err(Error::driver("launching core_sm90_elect"))?;
    let out = download(gpu, &od)?;
    let elected = elect_check(&out).map_err(|e| invalid(K, e))?;
    Ok(format!("elected lanes {elected:?}, cluster rank 0 size 1, {}", gpu.target.name()))
}

/// Checks `core_sm90_elect`'s output; returns the elected lane of each warp.
fn elect_check(out: &[u32]) -> Result<[usize; 2], String> {
    if out.len() != 192 {
        return Err(format!("length {} != 192", out.len()));
    }
    let mut elected = [0usize; 2];
    for (w, e) in elected.iter_mut().enumerate() {
        let warp = &out[32 * w..32 * w + 32];
        if let Some(l) = warp.iter().position(|&v| v > 1) {
            return Err(format!("out[{}] = {:#x}{}, want 0 or 1", 32 * w + l, warp[l], poison_note_u32(warp[l])));
        }
        let ones: Vec<usize> = (0..32).filter(|&l| warp[l] == 1).collect();
        if ones.len() != 1 {
            return Err(format!("warp {w} elected lanes {ones:?}, want exactly one"));
        }
        *e = ones[0];
    }
    let mut want = vec![0u32; 64];
    want.resize(128, 1);
    check_u32(&out[64..], &want, |i| {
        if i < 64 {
            format!("thread {i} cluster rank")
        } else {
            format!("thread {} cluster size", i - 64)
        }
    })?;
    Ok(elected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_ladder_and_ulp_dist() {
        assert_eq!(ulp_dist(0.0, -0.0), 0);
        assert_eq!(ulp_dist(f32::from_bits(1), -f32::from_bits(1)), 2);
        assert_eq!(ulp_dist(f32::MAX, f32::INFINITY), 1);
        assert_eq!(ulp_dist(1.0, 1.0f32.next_up()), 1);
        assert_eq!(ulp_dist(1.0, 1.0f32.next_down()), 1);
        assert_eq!(ulp_dist(-1.0, 1.0), 2 * 0x3f80_0000);
        assert_eq!(ulp_dist(f32::NAN, 1.0), u64::MAX);
    }

    #[test]
    fn ulp_at_matches_the_bit_ladder() {
        assert_eq!(ulp_at(1.0), 2f64.powi(-23));
        assert_eq!(ulp_at(-1.999), 2f64.powi(-23));
        assert_eq!(ulp_at(2.0), 2f64.powi(-22));
        assert_eq!(ulp_at(0.0), 2f64.powi(-149));
        assert_eq!(ulp_at(1e-40), 2f64.powi(-149));
        assert_eq!(ulp_at(MIN_NORMAL), 2f64.powi(-149));
        assert_eq!(ulp_at(f32::MAX as f64), 2f64.powi(104));
        assert_eq!(ulp_at(1e300), 2f64.powi(104));
        assert_eq!(TWO_128, 2f64.powi(128));
        // For any finite f32 y, the spacing above y is ulp(y).
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100_000 {
            let y = f32::from_bits(rng.random::<u32>() & 0x7fff_ffff);
            if y.is_finite() && y < f32::MAX {
                assert_eq!(y.next_up() as f64 - y as f64, ulp_at(y as f64), "{y:e}");
                assert_eq!(ulp_err(y.next_up(), y as f64), 1.0);
                assert_eq!(ulp_err(y, y as f64), 0.0);
            }
        }
    }

    #[test]
    fn ulp_err_edges() {
        // Half-way between 1 and its successor: 0.5 ulp either way.
        let mid = 1.0 + 2f64.powi(-24);
        assert_eq!(ulp_err(1.0, mid), 0.5);
        assert_eq!(ulp_err(1.0f32.next_up(), mid), 0.5);
        // Overflow one step early costs one ulp; a result that rounds to inf needs inf.
        assert_eq!(ulp_err(f32::INFINITY, f32::MAX as f64), 1.0);
        assert_eq!(ulp_err(f32::INFINITY, 1e39), 0.0);
        assert_eq!(ulp_err(f32::MAX, 1e39), f64::INFINITY);
        assert_eq!(ulp_err(f32::NEG_INFINITY, f64::NEG_INFINITY), 0.0);
        // Subnormal results are measured in 2^-149.
        assert_eq!(ulp_err(f32::from_bits(3), 0.0), 3.0);
        // NaN only matches NaN.
        assert_eq!(ulp_err(f32::NAN, f64::NAN), 0.0);
        assert_eq!(ulp_err(1.0, f64::NAN), f64::INFINITY);
        assert_eq!(ulp_err(f32::NAN, 1.0), f64::INFINITY);
        assert_eq!(ulp_err(POISON_F32, 1.0), f64::INFINITY);
    }

    #[test]
    fn half_rounding_is_nearest_even() {
        assert_eq!(f16r(65519.0), 65504.0);
        assert_eq!(f16r(65520.0), f32::INFINITY);
        assert_eq!(f16r(-1e6), f32::NEG_INFINITY);
        assert_eq!(f16r(2f32.powi(-25)), 0.0); // tie to even (0)
        assert_eq!(f16r(1.5 * 2f32.powi(-24)), 2f32.powi(-23)); // tie to even (2^-23)
        assert_eq!(f16r(1.0 + 1.0 / 2048.0), 1.0);
        assert_eq!(f16r(1.0 + 3.0 / 2048.0), 1.0 + 2.0 / 1024.0);
        assert_eq!(bf16r(1.0 + 1.0 / 256.0), 1.0);
        assert_eq!(bf16r(1.0 + 3.0 / 256.0), 1.0 + 1.0 / 64.0);
        assert_eq!(bf16r(f32::from_bits(0x7f7f_8000)), f32::INFINITY);
        assert_eq!(bf16r(f32::from_bits(1)), 0.0);
        assert!(f16r(f32::NAN).is_nan() && bf16r(f32::NAN).is_nan());
        assert_eq!(f16r(-0.0).to_bits(), 0x8000_0000);
        let e = f16_roundtrip_expected(3.0);
        assert_eq!(e, [3.0, 3.0, 6.0, -3.0]);
    }

    #[test]
    fn tf32_rounds_ties_away() {
        assert_eq!(tf32r(1.0 + 2f32.powi(-11)), 1.0 + 2f32.powi(-10)); // tie, away from 0
        assert_eq!(tf32r(-(1.0 + 2f32.powi(-11))), -(1.0 + 2f32.powi(-10)));
        assert_eq!(tf32r(1.0 + 2f32.powi(-12)), 1.0);
        assert_eq!(tf32r(1.0 + 3.0 * 2f32.powi(-11)), 1.0 + 2f32.powi(-9)); // tie, away (not even)
        for v in -2047..2048 {
            assert_eq!(tf32r(v as f32), v as f32);
        }
        assert_eq!(tf32r(f32::INFINITY), f32::INFINITY);
        assert!(tf32r(f32::NAN).is_nan());
    }

    #[test]
    fn int_ops_formula_matches_the_loops() {
        for m in 0..32u32 {
            for k in 0..16u32 {
                let v = (k << 28) | (0x0123_4560 & 0x0fff_ffe0) | m;
                let want: u32 = (0..m).map(|j| j * j).sum::<u32>() + (1..=k).sum::<u32>();
                assert_eq!(int_ops_expected(v)[7], want, "m={m} k={k}");
            }
        }
        let e = int_ops_expected(0x8000_0000);
        assert_eq!(e[2], 0xf000_0000); // arithmetic shift
        assert_eq!(e[3], 0x10); // rotate
        assert_eq!(e[6], 715_827_882); // i32::MIN / -3, truncating
        assert_eq!(int_ops_expected(0)[4], 32);
        assert_eq!(int_ops_expected(u32::MAX)[..2], [613_566_756, 3]);
        assert_eq!(int_ops_expected(7)[6], (-2i32) as u32); // 7 / -3 = -2, truncating
    }

    #[test]
    fn atomics_expected_empty_and_signed() {
        let (u, f) = atomics_expected(&[]);
        assert_eq!(u, [0, 0, 0x8000_0000, 0, 0]);
        assert_eq!(f, [0.0, f32::NEG_INFINITY, f32::INFINITY]);
        let (u, f) = atomics_expected(&[0xffff_ffff, 5, 0x8000_0000]);
        assert_eq!(u, [0x8000_0004, 0xffff_ffff, 5, 3, 3]);
        assert_eq!(f, [1023.0 + 5.0, 511.5, -511.5]);
    }

    #[test]
    fn warp_vote_expected_small_example() {
        let mut x = [0u32; 32];
        for (l, v) in x.iter_mut().enumerate() {
            *v = l as u32;
        }
        let e = warp_vote_expected(&x);
        assert_eq!(e[0], 0xaaaa_aaaa); // odd lanes
        assert_eq!(e[1], 0); // x[0] == 0
        assert_eq!(e[2], 1); // x[7] == 7
        assert_eq!(e[10 * 9 + 7], (0..32).sum::<u32>());
        assert_eq!(f32::from_bits(e[8]), 31.0 - 30000.0);
        assert_eq!(e[3], 0);
        assert_eq!(e[10 * 5 + 3], 4);
        assert_eq!(e[10 * 28 + 4], 31);
        assert_eq!(e[10 * 29 + 4], 29);
        assert_eq!(e[10 * 2 + 5], 29);
        assert_eq!(e[10 * 2 + 6], 7);
        assert_eq!(e[10 * 13 + 9], 8);
    }

    #[test]
    fn warp_reduce_expected_assigns_grid_stride_chunks() {
        // B = 2, G = 3: indices 0,1 -> block 0; 2,3 -> 1; 4,5 -> 2; 6,7 -> 0.
        let x: Vec<f32> = (0..8).map(|i| i as f32).collect();
        assert_eq!(warp_reduce_expected(&x, 3, 2), vec![0.0 + 1.0 + 6.0 + 7.0, 5.0, 9.0]);
        assert_eq!(warp_reduce_expected(&[], 2, 32), vec![0.0, 0.0]);
    }

    #[test]
    fn math_checkers_accept_exact_and_reject_garbage() {
        let mut rng = StdRng::seed_from_u64(7);
        let x = math_inputs(&mut rng, 2000);
        for &v in &x {
            // The correctly rounded result passes every accurate check.
            assert!(chk_exp(v, (v as f64).exp() as f32).ok, "exp {v:e}");
            assert!(chk_tanh(v, (v as f64).tanh() as f32).ok, "tanh {v:e}");
            assert!(chk_sqrt(v, v.sqrt()).ok, "sqrt {v:e}");
            assert!(chk_rsqrt(v, (1.0 / (v as f64).sqrt()) as f32).ok, "rsqrt {v:e}");
            assert!(chk_sigmoid(v, (1.0 / (1.0 + (-(v as f64)).exp())) as f32).ok, "sigmoid {v:e}");
            assert!(chk_ln(v, (v.abs() as f64).ln() as f32).ok, "ln {v:e}");
            assert!(chk_exp_m1(v, (v as f64).exp_m1() as f32).ok, "exp_m1 {v:e}");
            assert!(chk_tanh_fast(v, (v as f64).tanh() as f32).ok, "tanh_fast {v:e}");
            // Poison fails everything.
            for (_, c) in MATH.iter().chain(MATH_EXT.iter()) {
                assert!(!c(v, POISON_F32).ok, "poison accepted for {v:e}");
            }
        }
        // Documented special cases.
        assert!(chk_exp(100.0, f32::INFINITY).ok && !chk_exp(100.0, f32::MAX).ok);
        assert!(chk_exp(-104.0, 0.0).ok);
        assert!(chk_exp(1.0, std::f32::consts::E.next_up().next_up()).ok);
        assert!(!chk_exp(1.0, std::f32::consts::E.next_up().next_up().next_up()).ok);
        assert!(chk_tanh(9.5, 1.0).ok && chk_tanh(-9.5, -1.0).ok);
        assert!(chk_sqrt(-1.0, f32::NAN).ok && !chk_sqrt(2.0, 2f32.sqrt().next_up()).ok);
        assert!(chk_rsqrt(0.0, f32::INFINITY).ok && chk_rsqrt(f32::INFINITY, 0.0).ok);
        assert!(chk_rsqrt(-4.0, f32::NAN).ok);
        assert!(chk_exp_fast(-100.0, 0.0).ok && !chk_exp_fast(-100.0, 1e-30).ok);
        assert!(chk_exp_fast(f32::INFINITY, f32::INFINITY).ok && !chk_exp_fast(f32::INFINITY, f32::MAX).ok);
        assert!(chk_exp_fast(f32::NEG_INFINITY, 0.0).ok && !chk_exp_fast(f32::NEG_INFINITY, 1e-30).ok);
        assert!(chk_exp_fast(50.0, ((50f64).exp() * (1.0 + 60.0 * 2f64.powi(-24))) as f32).ok);
        assert!(!chk_exp_fast(1.0, std::f32::consts::E * (1.0 + 2f32.powi(-19))).ok);
        assert!(chk_sigmoid(f32::NEG_INFINITY, 0.0).ok && chk_sigmoid(f32::INFINITY, 1.0).ok);
        assert!(chk_sigmoid(-100.0, 0.0).ok);
        assert!(chk_ln(0.0, f32::NEG_INFINITY).ok && chk_ln(-1.0, 0.0).ok && !chk_ln(1.0, 1e-45).ok);
        assert!(chk_ln(1e-40, (1e-40f64).ln() as f32).ok);
        assert!(chk_exp_m1(f32::NEG_INFINITY, -1.0).ok);
        assert!(chk_tanh_fast(1.0, (1f64.tanh() * (1.0 + 2f64.powi(-12))) as f32).ok);
        assert!(!chk_tanh_fast(1.0, (1f64.tanh() * (1.0 + 2f64.powi(-10))) as f32).ok);
        assert!(chk_ln_fast(1e-40, f32::NEG_INFINITY).ok && chk_ln_fast(0.0, f32::NEG_INFINITY).ok);
        assert!(!chk_ln_fast(1e-40, (1e-40f64).ln() as f32).ok);
        assert!(chk_ln_fast(1.0, 2f32.powi(-22)).ok && !chk_ln_fast(1.0, 2f32.powi(-20)).ok);
        assert!(chk_ln_fast(100.0, (100f64.ln() as f32).next_up().next_up().next_up()).ok);
        assert!(chk_ln_fast(f32::INFINITY, f32::INFINITY).ok);
    }

    #[test]
    fn mma_reference_rounds_inputs() {
        // A = I·(1 + 2^-11) (f16 rounds it to 1), B = 3 everywhere.
        let mut a = vec![0f32; 256];
        for i in 0..16 {
            a[i * 16 + i] = 1.0 + 2f32.powi(-11);
        }
        let b = vec![3f32; 128];
        assert!(mma_expected(Mma::F16, &a, &b, None).iter().all(|&c| c == 3.0));
        let c0: Vec<f32> = (0..128).map(|i| i as f32).collect();
        let d = mma_expected(Mma::Tf32, &[1f32; 128], &[2f32; 64], Some(&c0));
        assert!(d.iter().enumerate().all(|(i, &v)| v == 16.0 + i as f64));
        assert_eq!(mma_expected(Mma::Bf16, &[0.0; 256], &[0.0; 256], None).len(), 256);
    }

    #[test]
    fn elect_check_accepts_one_lane_per_warp() {
        let mut out = vec![0u32; 192];
        out[0] = 1;
        out[32] = 1;
        out[128..].fill(1);
        assert_eq!(elect_check(&out), Ok([0, 0]));
        out[33] = 1;
        assert!(elect_check(&out).is_err());
        out[33] = 0;
        out[100] = POISON_U32;
        assert!(elect_check(&out).unwrap_err().contains("poison"));
    }

    #[test]
    fn check_helpers_report_poison() {
        let e = check_f32(&[1.0, POISON_F32], &[1.0, 2.0], false, |i| format!("#{i}")).unwrap_err();
        assert!(e.contains("#1") && e.contains("poison"), "{e}");
        assert!(check_f32(&[-0.0], &[0.0], true, |_| String::new()).is_ok());
        assert!(check_f32(&[-0.0], &[0.0], false, |_| String::new()).is_err());
        assert!(check_f32(&[f32::NAN], &[-f32::NAN], false, |_| String::new()).is_ok());
        // An expected NaN is not satisfied by the poison; an expected poison only by it.
        assert!(check_f32(&[POISON_F32], &[f32::NAN], false, |_| String::new()).is_err());
        assert!(check_f32(&[f32::NAN], &[POISON_F32], false, |_| String::new()).is_err());
        assert!(check_f32(&[POISON_F32], &[POISON_F32], false, |_| String::new()).is_ok());
        assert!(check_u32(&[1, POISON_U32], &[1, 2], |i| format!("#{i}")).unwrap_err().contains("poison"));
        assert_eq!(grid_for(0, 256, 0), 1);
        assert_eq!(grid_for(257, 256, 0), 2);
        assert_eq!(grid_for(1 << 20, 256, 40), 40);
    }
}
