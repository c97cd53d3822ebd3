//! Elementwise activations and the residual add: `y = act(a + b)` or `y = act(a)`, for
//! f32, f16 and bf16.
//!
//! Every kernel streams 16-byte vectors (4 f32 or 8 halves), four vectors per thread per
//! grid-stride step so four independent 16-byte loads per operand are in flight, then a
//! scalar tail for the last `len % 4` (f32) or `len % 8` (16-bit) elements. The
//! activation is a const generic, so each (activation, with/without `b`) pair is its own
//! loop without a per-element switch. Loads are the coherent `ld.global` (not the
//! read-only path), so `y` may alias `a` or `b` exactly (in-place ReLU, in-place add).

use crate::dcore::half::{bf16, f16};
use crate::dcore::mem::{f32x4, ld_global_f32x4, st_global_f32x4};
use crate::dcore::prelude::*;
use crate::params::*;

/// Vectors per thread per grid-stride step.
const UNROLL: u32 = 4;

/// Repeats `$body` for `$u` = 0, 1, 2, 3 (a constant in each copy), so per-vector arrays
/// indexed by `$u` stay in registers: LLVM does not reliably unroll a `for` over a range
/// before it decides where such arrays live.
macro_rules! unroll4 {
    ($u:ident => $body:block) => {{
        {
            const $u: usize = 0;
            $body
        }
        {
            const $u: usize = 1;
            $body
        }
        {
            const $u: usize = 2;
            $body
        }
        {
            const $u: usize = 3;
            $body
        }
    }};
}
#[allow(unused_imports)]
pub(crate) use unroll4;

const LOG2E: f32 = 1.442_695;
/// `log2(e) - LOG2E`, so `x * (LOG2E + LOG2E_LO)` is `x log2 e` to ~2^-50 relative.
const LOG2E_LO: f32 = 1.925_963e-8;

/// `2^k` for `-126 <= k <= 127`, from its bits.
#[inline(always)]
fn pow2i(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

/// `rcp.approx.f32` (no `.ftz`: subnormal results kept): `1/x`, ≤ 1 ulp.
#[inline(always)]
pub(crate) fn rcp(x: f32) -> f32 {
    let r: f32;
    unsafe {
        asm!("rcp.approx.f32 {r}, {x};", r = out(reg32) r, x = in(reg32) x, options(pure, nomem, nostack));
    }
    r
}

/// `e^x` through the SFU, accurate: `x log2 e = n + f` with `n = rint(x log2 e)` and `f`
/// (|f| <= 1/2) from two `fma`s against log2 e split hi/lo (so `f` is exact to ~1 ulp of
/// `f`, unlike `ex2(x * log2e)` whose product rounding is amplified by |x|), then
/// `ex2.approx(f)` (2^-22 relative) scaled by `2^n` in two exact steps (subnormal results
/// round once). Error ≤ 3 ulp over the whole range; `+inf` above 88.73, `+0` below
/// -103.98, NaN → NaN. About 14 instructions against ~25 for the polynomial `f32::exp`.
#[inline(always)]
pub(crate) fn exp_sfu(x: f32) -> f32 {
    if x > 88.722_84 {
        return f32::INFINITY;
    }
    if x < -103.972_08 {
        return 0.0;
    }
    let n = (x * LOG2E).round_ties_even();
    let f = x.mul_add(LOG2E, -n);
    let f = x.mul_add(LOG2E_LO, f);
    let k = n as i32;
    let k1 = k >> 1;
    crate::dcore::math::ex2_approx(f) * pow2i(k1) * pow2i(k - k1)
}

/// `1 / (1 + e^-x)`: [`exp_sfu`] and one [`rcp`]; ≤ 4 ulp for normal results; 0 for
/// x < -88.72, where the true value is below 2^-127 (an absolute error under 3e-39).
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    rcp(1.0 + exp_sfu(-x))
}

/// `tanh x = t / (t + 2)` with `t = e^{2|x|} - 1` (the device core's `exp_m1`
/// polynomial for `2|x| <= 1`, where it avoids cancellation; [`exp_sfu`] above), the
/// quotient by [`rcp`], sign restored; `±1` for |x| > 9. ≤ 4 ulp.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let r = if a > 9.0 {
        1.0
    } else {
        let a2 = a + a;
        let t = if a2 <= 1.0 { a2.exp_m1() } else { exp_sfu(a2) - 1.0 };
        t * rcp(t + 2.0)
    };
    r.copysign(x)
}

/// The activation `A` (`ACT_*`) in f32, with the reference's NaN behaviour: ReLU and Clip
/// pass NaN through (comparisons with NaN are false); sigmoid and tanh are [`sigmoid`] and
/// [`tanh`] (≤ 4 ulp).
#[inline(always)]
pub(crate) fn act<const A: u32>(x: f32, lo: f32, hi: f32) -> f32 {
    if A == ACT_RELU {
        if x < 0.0 {
            0.0
        } else {
            x
        }
    } else if A == ACT_CLIP {
        if x < lo {
            lo
        } else if x > hi {
            hi
        } else {
            x
        }
    } else if A == ACT_SIGMOID {
        sigmoid(x)
    } else if A == ACT_TANH {
        tanh(x)
    } else {
        x
    }
}

/// Calls `$f::<ACT>(args)` for the runtime activation `$act` (unknown codes act as
/// `ACT_NONE`; the host validates).
macro_rules! dispatch_act {
    ($act:expr, $f:ident, $($arg:expr),*) => {{
        // (No `match` on constants: that needs the `structural_peq` lang item.)
        let a = $act;
        if a == ACT_RELU {
            $f::<ACT_RELU>($($arg),*)
        } else if a == ACT_CLIP {
            $f::<ACT_CLIP>($($arg),*)
        } else if a == ACT_SIGMOID {
            $f::<ACT_SIGMOID>($($arg),*)
        } else if a == ACT_TANH {
            $f::<ACT_TANH>($($arg),*)
        } else {
            $f::<ACT_NONE>($($arg),*)
        }
    }};
}
#[allow(unused_imports)]
pub(crate) use dispatch_act;

#[inline(always)]
fn act4<const A: u32>(v: f32x4, lo: f32, hi: f32) -> f32x4 {
    f32x4 { x: act::<A>(v.x, lo, hi), y: act::<A>(v.y, lo, hi), z: act::<A>(v.z, lo, hi), w: act::<A>(v.w, lo, hi) }
}

#[inline(always)]
fn add4(a: f32x4, b: f32x4) -> f32x4 {
    f32x4 { x: a.x + b.x, y: a.y + b.y, z: a.z + b.z, w: a.w + b.w }
}

/// A 16-bit float format: how to widen and narrow its raw bits.
pub(crate) trait Half16 {
    fn widen(bits: u32) -> f32;
    /// Rounds `(lo, hi)` to nearest even and packs them, `lo` in the low half.
    fn pack(lo: f32, hi: f32) -> u32;
}
pub(crate) struct F16;
pub(crate) struct BF16;
impl Half16 for F16 {
    #[inline(always)]
    fn widen(bits: u32) -> f32 {
        f16::from_bits(bits as u16).to_f32()
    }
    #[inline(always)]
    fn pack(lo: f32, hi: f32) -> u32 {
        crate::dcore::half::half2::from_f32(lo, hi).0
    }
}
impl Half16 for BF16 {
    #[inline(always)]
    fn widen(bits: u32) -> f32 {
        bf16::from_bits(bits as u16).to_f32()
    }
    #[inline(always)]
    fn pack(lo: f32, hi: f32) -> u32 {
        crate::dcore::half::bf16x2::from_f32(lo, hi).0
    }
}

/// `act(a [+ b])` on one packed pair.
#[inline(always)]
fn pair<H: Half16, const A: u32, const B: bool>(a: u32, b: u32, lo: f32, hi: f32) -> u32 {
    let (mut a0, mut a1) = (H::widen(a & 0xffff), H::widen(a >> 16));
    if B {
        a0 += H::widen(b & 0xffff);
        a1 += H::widen(b >> 16);
    }
    H::pack(act::<A>(a0, lo, hi), act::<A>(a1, lo, hi))
}

/// `act(a [+ b])` on eight packed elements.
#[inline(always)]
fn vec8<H: Half16, const A: u32, const B: bool>(a: [u32; 4], b: [u32; 4], lo: f32, hi: f32) -> [u32; 4] {
    [
        pair::<H, A, B>(a[0], b[0], lo, hi),
        pair::<H, A, B>(a[1], b[1], lo, hi),
        pair::<H, A, B>(a[2], b[2], lo, hi),
        pair::<H, A, B>(a[3], b[3], lo, hi),
    ]
}

/// 16 bytes as four words, through the coherent vector load.
#[inline(always)]
unsafe fn ld_words(p: *const u16) -> [u32; 4] {
    let v = unsafe { ld_global_f32x4(p as *const f32) };
    [v.x.to_bits(), v.y.to_bits(), v.z.to_bits(), v.w.to_bits()]
}

#[inline(always)]
unsafe fn st_words(p: *mut u16, w: [u32; 4]) {
    let v =
        f32x4 { x: f32::from_bits(w[0]), y: f32::from_bits(w[1]), z: f32::from_bits(w[2]), w: f32::from_bits(w[3]) };
    unsafe { st_global_f32x4(p as *mut f32, v) }
}

#[inline(always)]
unsafe fn run_f32<const A: u32, const B: bool>(p: &EltwiseParams, a: *const f32, b: *const f32, y: *mut f32) {
    let (lo, hi) = (p.act_min, p.act_max);
    let n4 = p.len >> 2;
    let bd = block_dim_x();
    let step = grid_dim_x() * bd * UNROLL;
    let mut base = block_idx_x() * bd * UNROLL + thread_idx_x();
    while base < n4 {
        // All (predicated) loads first, so up to 4 (or 8) 16-byte loads are in flight.
        let mut va = [f32x4::splat(0.0); UNROLL as usize];
        let mut vb = [f32x4::splat(0.0); UNROLL as usize];
        unroll4!(U => {
            let i = base + U as u32 * bd;
            if i < n4 {
                va[U] = ld_global_f32x4(a.add((i * 4) as usize));
                if B {
                    vb[U] = ld_global_f32x4(b.add((i * 4) as usize));
                }
            }
        });
        unroll4!(U => {
            let i = base + U as u32 * bd;
            if i < n4 {
                let s = if B { add4(va[U], vb[U]) } else { va[U] };
                st_global_f32x4(y.add((i * 4) as usize), act4::<A>(s, lo, hi));
            }
        });
        base += step;
    }
    // Scalar tail: the last len % 4 elements, one per thread of the first threads.
    let t = global_idx_x();
    let i = n4 * 4 + t;
    if i < p.len {
        let k = i as usize;
        let s = if B { *a.add(k) + *b.add(k) } else { *a.add(k) };
        *y.add(k) = act::<A>(s, lo, hi);
    }
}

#[inline(always)]
unsafe fn run_16<H: Half16, const A: u32, const B: bool>(p: &EltwiseParams, a: *const u16, b: *const u16, y: *mut u16) {
    let (lo, hi) = (p.act_min, p.act_max);
    let n8 = p.len >> 3;
    let bd = block_dim_x();
    let step = grid_dim_x() * bd * UNROLL;
    let mut base = block_idx_x() * bd * UNROLL + thread_idx_x();
    while base < n8 {
        let mut wa = [[0u32; 4]; UNROLL as usize];
        let mut wb = [[0u32; 4]; UNROLL as usize];
        unroll4!(U => {
            let i = base + U as u32 * bd;
            if i < n8 {
                wa[U] = ld_words(a.add((i * 8) as usize));
                if B {
                    wb[U] = ld_words(b.add((i * 8) as usize));
                }
            }
        });
        unroll4!(U => {
            let i = base + U as u32 * bd;
            if i < n8 {
                st_words(y.add((i * 8) as usize), vec8::<H, A, B>(wa[U], wb[U], lo, hi));
            }
        });
        base += step;
    }
    let t = global_idx_x();
    let i = n8 * 8 + t;
    if i < p.len {
        let k = i as usize;
        let mut s = H::widen(*a.add(k) as u32);
        if B {
            s += H::widen(*b.add(k) as u32);
        }
        let r = H::pack(act::<A>(s, lo, hi), 0.0);
        *y.add(k) = r as u16;
    }
}

#[inline(always)]
unsafe fn f32_entry<const A: u32>(p: &EltwiseParams, a: *const f32, b: *const f32, y: *mut f32) {
    unsafe {
        if b.is_null() {
            run_f32::<A, false>(p, a, b, y)
        } else {
            run_f32::<A, true>(p, a, b, y)
        }
    }
}

#[inline(always)]
unsafe fn f16_entry<const A: u32>(p: &EltwiseParams, a: *const u16, b: *const u16, y: *mut u16) {
    unsafe {
        if b.is_null() {
            run_16::<F16, A, false>(p, a, b, y)
        } else {
            run_16::<F16, A, true>(p, a, b, y)
        }
    }
}

#[inline(always)]
unsafe fn bf16_entry<const A: u32>(p: &EltwiseParams, a: *const u16, b: *const u16, y: *mut u16) {
    unsafe {
        if b.is_null() {
            run_16::<BF16, A, false>(p, a, b, y)
        } else {
            run_16::<BF16, A, true>(p, a, b, y)
        }
    }
}

/// Standalone activation, f32: `y[i] = act(a[i])` (`act` = `p.act`: none, ReLU, Clip
/// `[act_min, act_max]`, sigmoid, tanh), or `act(a[i] + b[i])` when `b` is non-null
/// (the same contract as [`eltwise_add_f32`]; the launcher passes null).
///
/// Thread mapping: grid-stride over 16-byte vectors, [`UNROLL`] vectors (strided by the
/// block size, so each load instruction is coalesced) per thread per step; the last
/// `len % 4` elements by the first `len % 4` threads of the grid. Any 1-D grid.
///
/// # Safety
/// `a`, `b` (if non-null) and `y` hold `len` f32 and are 16-byte aligned; `y` may equal
/// `a` or `b` but must not overlap them otherwise; `len < 2^31`.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn eltwise_act_f32(p: EltwiseParams, a: *const f32, b: *const f32, y: *mut f32) {
    unsafe { dispatch_act!(p.act, f32_entry, &p, a, b, y) }
}

/// Elementwise add with optional activation, f32: `y[i] = act(a[i] + b[i])` (ResNet's
/// residual join); with a null `b`, `y = act(a)`. Mapping and safety as
/// [`eltwise_act_f32`].
#[no_mangle]
pub unsafe extern "ptx-kernel" fn eltwise_add_f32(p: EltwiseParams, a: *const f32, b: *const f32, y: *mut f32) {
    unsafe { dispatch_act!(p.act, f32_entry, &p, a, b, y) }
}

/// Activation on f16 data (raw bits as `u16`): widened to f32, `act(a [+ b])` in f32,
/// rounded once to nearest even. 8 elements (16 bytes) per vector, tail `len % 8`.
///
/// # Safety
/// As [`eltwise_act_f32`] with f16 elements.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn eltwise_act_f16(p: EltwiseParams, a: *const u16, b: *const u16, y: *mut u16) {
    unsafe { dispatch_act!(p.act, f16_entry, &p, a, b, y) }
}

/// `y = act(a + b)` on f16 data; see [`eltwise_act_f16`].
#[no_mangle]
pub unsafe extern "ptx-kernel" fn eltwise_add_f16(p: EltwiseParams, a: *const u16, b: *const u16, y: *mut u16) {
    unsafe { dispatch_act!(p.act, f16_entry, &p, a, b, y) }
}

/// Activation on bf16 data; see [`eltwise_act_f16`].
#[no_mangle]
pub unsafe extern "ptx-kernel" fn eltwise_act_bf16(p: EltwiseParams, a: *const u16, b: *const u16, y: *mut u16) {
    unsafe { dispatch_act!(p.act, bf16_entry, &p, a, b, y) }
}

/// `y = act(a + b)` on bf16 data; see [`eltwise_act_f16`].
#[no_mangle]
pub unsafe extern "ptx-kernel" fn eltwise_add_bf16(p: EltwiseParams, a: *const u16, b: *const u16, y: *mut u16) {
    unsafe { dispatch_act!(p.act, bf16_entry, &p, a, b, y) }
}
