//! `f32`/`f64` math: IEEE basics, accurate `exp`/`exp_m1`/`ln`/`tanh`/`sigmoid`, and
//! the fast SFU approximations.
//!
//! NVPTX has no libm, so everything is either an LLVM intrinsic that maps onto one PTX
//! instruction (`sqrt.rn`, `fma.rn`, `abs`, `min`/`max`, `cvt.rni`...) or written here.
//! Two families:
//!
//! * **Accurate** (`exp`, `exp_m1`, `ln`, `tanh`, `sigmoid`): range reduction plus a
//!   polynomial in `fma`, no SFU instruction, subnormals kept. Good for references
//!   compared at 1e-5 relative L2 (measured relative L2 ≈ 3e-8). Each function states
//!   its bound and the maximum measured against an `f64` reference on an H200 over a
//!   dense sweep of [-110, 92] plus random points (see `kernels/SELFTEST.md`).
//! * **Fast** (`*_fast`, `rsqrt`): one or two MUFU (special-function unit)
//!   instructions, `.approx` and mostly `.ftz` (subnormal inputs/outputs flushed to
//!   zero). Errors are the PTX ISA's / CUDA Programming Guide's bounds.
//!
//! Nothing here can panic; NaN in gives NaN out.

use super::intrinsics as i;
use super::lang::asm;

/// `a * b + c` with a single rounding (`fma.rn.f32`) — the core's `fma`.
#[inline(always)]
pub fn fma(a: f32, b: f32, c: f32) -> f32 {
    i::fmaf32(a, b, c)
}

/// `e^x`, accurate (see [`f32::exp`]).
#[inline(always)]
pub fn expf(x: f32) -> f32 {
    x.exp()
}

/// `e^x`, fast (see [`f32::exp_fast`]).
#[inline(always)]
pub fn expf_fast(x: f32) -> f32 {
    x.exp_fast()
}

/// `ln x`, accurate (see [`f32::ln`]).
#[inline(always)]
pub fn logf(x: f32) -> f32 {
    x.ln()
}

/// `tanh x`, accurate (see [`f32::tanh`]).
#[inline(always)]
pub fn tanhf(x: f32) -> f32 {
    x.tanh()
}

/// `1 / (1 + e^-x)`, accurate (see [`f32::sigmoid`]).
#[inline(always)]
pub fn sigmoidf(x: f32) -> f32 {
    x.sigmoid()
}

/// One MUFU instruction with one `f32` operand.
macro_rules! mufu {
    ($(#[$m:meta])* $name:ident, $ins:literal) => {
        $(#[$m])*
        #[inline(always)]
        pub fn $name(x: f32) -> f32 {
            let y: f32;
            unsafe {
                asm!(
                    concat!($ins, " {y}, {x};"),
                    y = out(reg32) y,
                    x = in(reg32) x,
                    options(pure, nomem, nostack),
                );
            }
            y
        }
    };
}
use super::lang::concat;
mufu!(
    /// `ex2.approx.ftz.f32`: `2^x`. PTX ISA: max relative error 2^-22 (about 2 ulp)
    /// over the full range; subnormal results flush to zero.
    ex2_approx, "ex2.approx.ftz.f32"
);
mufu!(
    /// `lg2.approx.ftz.f32`: `log2 x`. PTX ISA: max absolute error 2^-22 on
    /// [0.5, 2], relative 2^-22 elsewhere; subnormal inputs flush to zero (→ -inf).
    lg2_approx, "lg2.approx.ftz.f32"
);
mufu!(
    /// `rsqrt.approx.f32`: `1/sqrt x`. PTX ISA: max relative error 2^-22.9 (≤ 2 ulp,
    /// CUDA's `rsqrtf`).
    rsqrt_approx, "rsqrt.approx.f32"
);
mufu!(
    /// `rcp.approx.ftz.f32`: `1/x`. PTX ISA: max relative error 2^-23 (≤ 1 ulp) on
    /// normal inputs; subnormals flush to zero.
    rcp_approx, "rcp.approx.ftz.f32"
);
mufu!(
    /// `tanh.approx.f32` (sm_75+): `tanh x`. PTX ISA: max relative error 2^-11 (measured
    /// 2^-16.5 on H200, but only the ISA bound is promised) — **not** good enough for a
    /// 1e-5 reference.
    tanh_approx, "tanh.approx.f32"
);
mufu!(
    /// `sin.approx.ftz.f32`: max absolute error 2^-20.5 on [-π, π] (PTX ISA); the
    /// argument is not range-reduced, error grows outside that interval.
    sin_approx, "sin.approx.ftz.f32"
);
mufu!(
    /// `cos.approx.ftz.f32`: max absolute error 2^-20.5 on [-π, π] (PTX ISA).
    cos_approx, "cos.approx.ftz.f32"
);

const LOG2E: f32 = 1.442_695_04;
/// ln 2 split for Cody–Waite reduction: `LN2_HI` is ln 2 rounded to `f32`, `LN2_LO`
/// the rest (`LN2_HI + LN2_LO` = ln 2 to ~2^-50).
const LN2_HI: f32 = 0.693_147_2;
const LN2_LO: f32 = -1.904_654_3e-9;
/// Above this `e^x` overflows `f32` (ln(f32::MAX) rounded down to `f32`).
const EXP_HI: f32 = 88.722_83;
/// Below this `e^x` rounds to zero (ln(2^-150)).
const EXP_LO: f32 = -103.972_08;

/// `2^k` for `-126 <= k <= 127`, built from its bits.
#[inline(always)]
fn pow2i(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

impl f32 {
    pub const INFINITY: f32 = 1.0 / 0.0;
    pub const NEG_INFINITY: f32 = -1.0 / 0.0;
    pub const NAN: f32 = 0.0 / 0.0;
    pub const MAX: f32 = 3.402_823_5e38;
    pub const MIN: f32 = -3.402_823_5e38;
    /// Smallest positive normal value.
    pub const MIN_POSITIVE: f32 = 1.175_494_4e-38;
    pub const EPSILON: f32 = 1.192_092_9e-7;

    /// The IEEE bit pattern.
    #[inline(always)]
    #[allow(unnecessary_transmutes)]
    pub fn to_bits(self) -> u32 {
        unsafe { i::transmute(self) }
    }
    /// The value with the given IEEE bit pattern.
    #[inline(always)]
    #[allow(unnecessary_transmutes)]
    pub fn from_bits(v: u32) -> f32 {
        unsafe { i::transmute(v) }
    }
    /// Whether this is NaN.
    #[inline(always)]
    #[allow(clippy::eq_op)]
    pub fn is_nan(self) -> bool {
        self != self
    }
    /// Whether this is neither infinite nor NaN.
    #[inline(always)]
    pub fn is_finite(self) -> bool {
        self.abs() < f32::INFINITY
    }
    /// Whether the sign bit is set (also for -0.0 and negative NaNs).
    #[inline(always)]
    pub fn is_sign_negative(self) -> bool {
        self.to_bits() >> 31 != 0
    }
    /// `|x|` (`abs.f32`).
    #[inline(always)]
    pub fn abs(self) -> f32 {
        i::fabsf32(self)
    }
    /// IEEE minNum (`min.f32`): a NaN operand is ignored.
    #[inline(always)]
    pub fn min(self, other: f32) -> f32 {
        i::minnumf32(self, other)
    }
    /// IEEE maxNum (`max.f32`): a NaN operand is ignored.
    #[inline(always)]
    pub fn max(self, other: f32) -> f32 {
        i::maxnumf32(self, other)
    }
    /// `self` limited to `lo..=hi`.
    #[inline(always)]
    pub fn clamp(self, lo: f32, hi: f32) -> f32 {
        self.max(lo).min(hi)
    }
    /// Magnitude of `self` with the sign of `sign`.
    #[inline(always)]
    pub fn copysign(self, sign: f32) -> f32 {
        i::copysignf32(self, sign)
    }
    /// `self * a + b` with one rounding (`fma.rn.f32`).
    #[inline(always)]
    pub fn mul_add(self, a: f32, b: f32) -> f32 {
        i::fmaf32(self, a, b)
    }
    /// Correctly rounded square root (`sqrt.rn.f32`, 0.5 ulp).
    #[inline(always)]
    pub fn sqrt(self) -> f32 {
        i::sqrtf32(self)
    }
    /// `1/sqrt(x)` via `rsqrt.approx.f32` (max relative error 2^-22.9, ≤ 2 ulp).
    #[inline(always)]
    pub fn rsqrt(self) -> f32 {
        rsqrt_approx(self)
    }
    /// `1/x`, correctly rounded (`div.rn.f32`).
    #[inline(always)]
    pub fn recip(self) -> f32 {
        1.0 / self
    }
    /// `1/x` via `rcp.approx.ftz.f32` (≤ 1 ulp, subnormals flushed).
    #[inline(always)]
    pub fn recip_fast(self) -> f32 {
        rcp_approx(self)
    }
    /// Largest integer `<= x` (`cvt.rmi`).
    #[inline(always)]
    pub fn floor(self) -> f32 {
        i::floorf32(self)
    }
    /// Smallest integer `>= x` (`cvt.rpi`).
    #[inline(always)]
    pub fn ceil(self) -> f32 {
        i::ceilf32(self)
    }
    /// Integer part (`cvt.rzi`).
    #[inline(always)]
    pub fn trunc(self) -> f32 {
        i::truncf32(self)
    }
    /// Nearest integer, ties to even (`cvt.rni`).
    #[inline(always)]
    pub fn round_ties_even(self) -> f32 {
        i::round_ties_even_f32(self)
    }

    /// `e^x`, accurate: Cody–Waite reduction `x = n ln2 + r` (|r| <= ln2/2, `n` by
    /// `cvt.rni`, `r` by two `fma`s with ln 2 split hi/lo), degree-7 Taylor polynomial
    /// for `e^r` (truncation < 0.07 ulp) in Horner/`fma` form, then scaling by `2^n` in
    /// two exact steps so subnormal results round once. Error ≤ 2 ulp over the whole
    /// range (measured max 0.92 ulp; subnormal results ≤ 1 ulp of the subnormal
    /// spacing); `+inf` above 88.7228, `+0` below -103.972, NaN → NaN. About 20
    /// instructions, no MUFU.
    #[inline(always)]
    pub fn exp(self) -> f32 {
        let x = self;
        if x > EXP_HI {
            return f32::INFINITY;
        }
        if x < EXP_LO {
            return 0.0;
        }
        let n = (x * LOG2E).round_ties_even();
        let r = i::fmaf32(n, -LN2_HI, x);
        let r = i::fmaf32(n, -LN2_LO, r);
        let mut p = 1.0 / 5040.0;
        p = i::fmaf32(p, r, 1.0 / 720.0);
        p = i::fmaf32(p, r, 1.0 / 120.0);
        p = i::fmaf32(p, r, 1.0 / 24.0);
        p = i::fmaf32(p, r, 1.0 / 6.0);
        p = i::fmaf32(p, r, 0.5);
        p = i::fmaf32(p, r, 1.0);
        p = i::fmaf32(p, r, 1.0);
        let k = n as i32;
        let k1 = k >> 1;
        p * pow2i(k1) * pow2i(k - k1)
    }

    /// `e^x - 1`, accurate also near 0: degree-11 Taylor polynomial on [-1, 1]
    /// (truncation < 2e-9 relative), `exp(x) - 1` outside. Error ≤ 3 ulp (|x| > 1,
    /// where `e^x/(e^x-1) <= 1.6` amplifies [`exp`](Self::exp)'s error); measured max
    /// 1.53 ulp.
    #[inline(always)]
    pub fn exp_m1(self) -> f32 {
        let x = self;
        if x.abs() <= 1.0 {
            let mut q = 2.505_210_8e-8;
            q = i::fmaf32(q, x, 2.755_732e-7);
            q = i::fmaf32(q, x, 2.755_732e-6);
            q = i::fmaf32(q, x, 2.480_158_7e-5);
            q = i::fmaf32(q, x, 1.984_127e-4);
            q = i::fmaf32(q, x, 1.388_888_9e-3);
            q = i::fmaf32(q, x, 8.333_333e-3);
            q = i::fmaf32(q, x, 4.166_666_8e-2);
            q = i::fmaf32(q, x, 0.166_666_67);
            q = i::fmaf32(q, x, 0.5);
            i::fmaf32(q, x * x, x)
        } else {
            x.exp() - 1.0
        }
    }

    /// `tanh x`, accurate: `t/(t+2)` with `t = exp_m1(2|x|)`, sign restored; `±1` for
    /// |x| > 9 (where tanh rounds to 1 in `f32`). Error ≤ 3 ulp (measured 2.09); no
    /// cancellation near 0.
    #[inline(always)]
    pub fn tanh(self) -> f32 {
        let a = self.abs();
        let r = if a > 9.0 {
            1.0
        } else {
            let t = (a + a).exp_m1();
            t / (t + 2.0)
        };
        r.copysign(self)
    }

    /// `1 / (1 + e^-x)`, accurate: relative error ≤ 3 ulp (one [`exp`](Self::exp), one
    /// add, one IEEE division; measured 2.40); 0 for x < -103.9, 1 for large x.
    #[inline(always)]
    pub fn sigmoid(self) -> f32 {
        1.0 / (1.0 + (-self).exp())
    }

    /// `ln x`, accurate: `x = 2^e m`, `m` in [√½, √2), `ln m = f - s (f - R(s²))` with
    /// `f = m - 1` (exact), `s = f/(2+f)`, `R` the atanh series to `s^9`; plus `e ln 2`
    /// with ln 2 split hi/lo. Error ≤ 2 ulp (measured 0.82); `ln 0 = -inf`,
    /// `ln x<0 = NaN`, `ln inf = inf`; subnormal inputs handled.
    #[inline(always)]
    pub fn ln(self) -> f32 {
        let mut x = self;
        if !(x > 0.0) {
            return if x == 0.0 { f32::NEG_INFINITY } else { f32::NAN };
        }
        if x == f32::INFINITY {
            return x;
        }
        let mut e: i32 = -127;
        if x < f32::MIN_POSITIVE {
            x *= 8_388_608.0; // 2^23
            e -= 23;
        }
        let bits = x.to_bits();
        e += (bits >> 23) as i32;
        let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
        if m > consts::SQRT_2 {
            m *= 0.5;
            e += 1;
        }
        let f = m - 1.0;
        let s = f / (2.0 + f);
        let z = s * s;
        let mut r = 2.0 / 9.0;
        r = i::fmaf32(r, z, 2.0 / 7.0);
        r = i::fmaf32(r, z, 2.0 / 5.0);
        r = i::fmaf32(r, z, 2.0 / 3.0);
        r *= z;
        let ln_m = f - s * (f - r);
        let ef = e as f32;
        i::fmaf32(ef, LN2_HI, i::fmaf32(ef, LN2_LO, ln_m))
    }

    /// `e^x` via `ex2.approx.ftz(x·log2 e)` (CUDA's `__expf`). The rounding of `x·log2 e`
    /// is amplified by |x|: the CUDA Programming Guide quotes `2 + floor(1.173·|x|)` ulp;
    /// measured on H200: ≤ 2.2 ulp for |x| ≤ 1 and ≤ `2 + 1.15·|x|` ulp beyond (63 ulp,
    /// ~4e-6 relative, near |x| = 55) — check against `2 + 1.3·|x|` ulp. Results below
    /// 2^-126 flush to 0. Two instructions.
    #[inline(always)]
    pub fn exp_fast(self) -> f32 {
        ex2_approx(self * LOG2E)
    }
    /// `2^x` via `ex2.approx.ftz.f32` (≈ 2 ulp).
    #[inline(always)]
    pub fn exp2_fast(self) -> f32 {
        ex2_approx(self)
    }
    /// `ln x` via `lg2.approx.ftz(x)·ln 2` (CUDA's `__logf`): absolute error ≤ 2^-21.5
    /// on (0.5, 2) (measured 2^-22.6), ≤ 4 ulp relative elsewhere (measured 3.1);
    /// subnormal inputs → -inf.
    #[inline(always)]
    pub fn ln_fast(self) -> f32 {
        lg2_approx(self) * consts::LN_2
    }
    /// `log2 x` via `lg2.approx.ftz.f32`.
    #[inline(always)]
    pub fn log2_fast(self) -> f32 {
        lg2_approx(self)
    }
    /// `tanh x` via `tanh.approx.f32` (max relative error ≈ 2^-11).
    #[inline(always)]
    pub fn tanh_fast(self) -> f32 {
        tanh_approx(self)
    }
    /// Sigmoid via `0.5·tanh.approx(x/2) + 0.5` (absolute error ≈ 2^-12).
    #[inline(always)]
    pub fn sigmoid_fast(self) -> f32 {
        i::fmaf32(0.5, tanh_approx(0.5 * self), 0.5)
    }
    /// `sin x` via `sin.approx.ftz.f32` (abs error ≈ 2^-20.5 on [-π, π]).
    #[inline(always)]
    pub fn sin_fast(self) -> f32 {
        sin_approx(self)
    }
    /// `cos x` via `cos.approx.ftz.f32` (abs error ≈ 2^-20.5 on [-π, π]).
    #[inline(always)]
    pub fn cos_fast(self) -> f32 {
        cos_approx(self)
    }
}

impl f64 {
    pub const INFINITY: f64 = 1.0 / 0.0;
    pub const NEG_INFINITY: f64 = -1.0 / 0.0;
    pub const NAN: f64 = 0.0 / 0.0;
    pub const MAX: f64 = 1.797_693_134_862_315_7e308;
    pub const MIN: f64 = -1.797_693_134_862_315_7e308;
    pub const EPSILON: f64 = 2.220_446_049_250_313e-16;

    /// The IEEE bit pattern.
    #[inline(always)]
    #[allow(unnecessary_transmutes)]
    pub fn to_bits(self) -> u64 {
        unsafe { i::transmute(self) }
    }
    /// The value with the given IEEE bit pattern.
    #[inline(always)]
    #[allow(unnecessary_transmutes)]
    pub fn from_bits(v: u64) -> f64 {
        unsafe { i::transmute(v) }
    }
    /// Whether this is NaN.
    #[inline(always)]
    #[allow(clippy::eq_op)]
    pub fn is_nan(self) -> bool {
        self != self
    }
    /// `|x|`.
    #[inline(always)]
    pub fn abs(self) -> f64 {
        i::fabsf64(self)
    }
    /// IEEE minNum.
    #[inline(always)]
    pub fn min(self, other: f64) -> f64 {
        i::minnumf64(self, other)
    }
    /// IEEE maxNum.
    #[inline(always)]
    pub fn max(self, other: f64) -> f64 {
        i::maxnumf64(self, other)
    }
    /// Magnitude of `self` with the sign of `sign`.
    #[inline(always)]
    pub fn copysign(self, sign: f64) -> f64 {
        i::copysignf64(self, sign)
    }
    /// `self * a + b` with one rounding (`fma.rn.f64`).
    #[inline(always)]
    pub fn mul_add(self, a: f64, b: f64) -> f64 {
        i::fmaf64(self, a, b)
    }
    /// Correctly rounded square root (`sqrt.rn.f64`).
    #[inline(always)]
    pub fn sqrt(self) -> f64 {
        i::sqrtf64(self)
    }
    /// Largest integer `<= x`.
    #[inline(always)]
    pub fn floor(self) -> f64 {
        i::floorf64(self)
    }
    /// Smallest integer `>= x`.
    #[inline(always)]
    pub fn ceil(self) -> f64 {
        i::ceilf64(self)
    }
    /// Integer part.
    #[inline(always)]
    pub fn trunc(self) -> f64 {
        i::truncf64(self)
    }
    /// Nearest integer, ties to even.
    #[inline(always)]
    pub fn round_ties_even(self) -> f64 {
        i::round_ties_even_f64(self)
    }
}

/// Mathematical constants (`f32`).
pub mod consts {
    pub const PI: f32 = 3.141_592_7;
    pub const E: f32 = 2.718_281_8;
    pub const LN_2: f32 = 0.693_147_2;
    pub const LOG2_E: f32 = 1.442_695;
    pub const SQRT_2: f32 = 1.414_213_5;
    pub const FRAC_1_SQRT_2: f32 = 0.707_106_77;
}
