//! rustc intrinsics the device core builds on.
//!
//! Each declaration must match the 1.95 compiler's own signature exactly (rustc checks
//! them). They lower straight to LLVM instructions or intrinsics, which the NVPTX
//! backend turns into single PTX instructions (`sqrtf32` → `sqrt.rn.f32`, `fmaf32` →
//! `fma.rn.f32`, `ctlz` → `clz.b32`, ...). Prefer the wrappers in the other modules;
//! these are public for the rare kernel that needs one directly.

/// Aborts the kernel with a `trap` instruction (see [`super::panic`]).
#[rustc_intrinsic]
#[rustc_nounwind]
pub fn abort() -> !;
/// Tells the optimiser this point is never reached.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const unsafe fn unreachable() -> !;
/// Tells the optimiser `b` holds.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const unsafe fn assume(b: bool);
/// Reinterprets the bits of `src` as a `Dst` of the same size.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const unsafe fn transmute<Src, Dst>(src: Src) -> Dst;
/// Like [`transmute`] but the size check happens at monomorphisation (for generic code).
#[rustc_intrinsic]
#[rustc_nounwind]
pub const unsafe fn transmute_unchecked<Src, Dst>(src: Src) -> Dst;
/// Size of `T` in bytes.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn size_of<T>() -> usize;
/// Alignment of `T` in bytes.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn align_of<T>() -> usize;
/// In-bounds pointer offset (LLVM `getelementptr inbounds`).
#[rustc_intrinsic]
#[rustc_nounwind]
pub const unsafe fn offset<Ptr, Delta>(dst: Ptr, offset: Delta) -> Ptr;
/// Wrapping pointer offset (plain `getelementptr`).
#[rustc_intrinsic]
#[rustc_nounwind]
pub const unsafe fn arith_offset<T>(dst: *const T, offset: isize) -> *const T;
/// Bitwise read of `*ptr` (what `ptr::read` is built on).
#[rustc_intrinsic]
#[rustc_nounwind]
pub const unsafe fn read_via_copy<T>(ptr: *const T) -> T;
/// Bitwise write of `value` to `*ptr` without dropping the old value.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const unsafe fn write_via_move<T>(ptr: *mut T, value: T);
/// Volatile load.
#[rustc_intrinsic]
#[rustc_nounwind]
pub unsafe fn volatile_load<T>(src: *const T) -> T;
/// Volatile store.
#[rustc_intrinsic]
#[rustc_nounwind]
pub unsafe fn volatile_store<T>(dst: *mut T, val: T);

/// IEEE square root, `sqrt.rn.f32`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub fn sqrtf32(x: f32) -> f32;
/// IEEE square root, `sqrt.rn.f64`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub fn sqrtf64(x: f64) -> f64;
/// Fused multiply-add with one rounding, `fma.rn.f32`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn fmaf32(a: f32, b: f32, c: f32) -> f32;
/// Fused multiply-add with one rounding, `fma.rn.f64`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn fmaf64(a: f64, b: f64, c: f64) -> f64;
/// `abs.f32`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn fabsf32(x: f32) -> f32;
/// `abs.f64`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn fabsf64(x: f64) -> f64;
/// `cvt.rmi.f32.f32`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn floorf32(x: f32) -> f32;
/// `cvt.rmi.f64.f64`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn floorf64(x: f64) -> f64;
/// `cvt.rpi.f32.f32`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn ceilf32(x: f32) -> f32;
/// `cvt.rpi.f64.f64`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn ceilf64(x: f64) -> f64;
/// `cvt.rzi.f32.f32`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn truncf32(x: f32) -> f32;
/// `cvt.rzi.f64.f64`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn truncf64(x: f64) -> f64;
/// `cvt.rni.f32.f32`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn round_ties_even_f32(x: f32) -> f32;
/// `cvt.rni.f64.f64`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn round_ties_even_f64(x: f64) -> f64;
/// Magnitude of `x`, sign of `y`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn copysignf32(x: f32, y: f32) -> f32;
/// Magnitude of `x`, sign of `y`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn copysignf64(x: f64, y: f64) -> f64;
/// IEEE minNum (a NaN operand loses), `min.f32`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn minnumf32(x: f32, y: f32) -> f32;
/// IEEE maxNum (a NaN operand loses), `max.f32`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn maxnumf32(x: f32, y: f32) -> f32;
/// IEEE minNum, `min.f64`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn minnumf64(x: f64, y: f64) -> f64;
/// IEEE maxNum, `max.f64`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn maxnumf64(x: f64, y: f64) -> f64;

/// Population count, `popc`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn ctpop<T: super::lang::Copy>(x: T) -> u32;
/// Leading zeros, `clz`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn ctlz<T: super::lang::Copy>(x: T) -> u32;
/// Trailing zeros (`brev` + `clz`).
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn cttz<T: super::lang::Copy>(x: T) -> u32;
/// Byte swap, `prmt`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn bswap<T: super::lang::Copy>(x: T) -> T;
/// Bit reversal, `brev`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn bitreverse<T: super::lang::Copy>(x: T) -> T;
/// Two's-complement wrapping add.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn wrapping_add<T: super::lang::Copy>(a: T, b: T) -> T;
/// Two's-complement wrapping subtract.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn wrapping_sub<T: super::lang::Copy>(a: T, b: T) -> T;
/// Two's-complement wrapping multiply.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn wrapping_mul<T: super::lang::Copy>(a: T, b: T) -> T;
/// Saturating add.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn saturating_add<T: super::lang::Copy>(a: T, b: T) -> T;
/// Saturating subtract.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const fn saturating_sub<T: super::lang::Copy>(a: T, b: T) -> T;
/// Division without the divide-by-zero/overflow check (UB if `y == 0` or `MIN / -1`).
#[rustc_intrinsic]
#[rustc_nounwind]
pub const unsafe fn unchecked_div<T: super::lang::Copy>(x: T, y: T) -> T;
/// Remainder without the divide-by-zero/overflow check (UB if `y == 0` or `MIN % -1`).
#[rustc_intrinsic]
#[rustc_nounwind]
pub const unsafe fn unchecked_rem<T: super::lang::Copy>(x: T, y: T) -> T;
/// Left shift; UB if `y >= BITS`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const unsafe fn unchecked_shl<T: super::lang::Copy, U: super::lang::Copy>(x: T, y: U) -> T;
/// Right shift; UB if `y >= BITS`.
#[rustc_intrinsic]
#[rustc_nounwind]
pub const unsafe fn unchecked_shr<T: super::lang::Copy, U: super::lang::Copy>(x: T, y: U) -> T;
