//! Self-test cases for the memory-bound kernels: pooling, activations and add,
//! batch-norm (channel affine), LRN, softmax, concat, layout and precision conversion.
//!
//! Every case launches through `launch::memory` (so the launch rules are tested too),
//! poisons its outputs, and compares every element with the f64 CPU reference. Shapes
//! mix odd sizes (1x3x7x5, lengths that are not multiples of 4 or 8) that exercise the
//! scalar tails and bounds checks, batch 1 and batch 8+, and the real layers of the
//! models cnnergy profiles. Conversions must be bit-exact.

use cudarc::driver::CudaSlice;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::buf::{download, poisoned_f32, upload};
use super::{compare, CaseFn};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::launch::memory as launch;
use crate::ops::{Act, Activation, Add, BatchNorm, DType, Layout, Lrn, Pool2d, PoolKind, Softmax};
use crate::reference;

/// A 16-bit NaN (f16 and bf16 alike) with a recognisable payload, for poisoning 16-bit
/// outputs.
pub const POISON_16: u16 = 0x7fad;

/// Relative-L2 tolerance of a result stored in `dtype` (f32: computed in f32 with
/// accurate transcendentals; 16-bit: one final rounding, ≤ 2^-11 / 2^-8 relative per
/// element).
fn tol(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-5,
        DType::F16 => 1e-3,
        DType::BF16 => 8e-3,
    }
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn uniform(r: &mut StdRng, len: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..len).map(|_| r.random_range(lo..=hi)).collect()
}

fn bad(msg: String) -> Error {
    Error::Invalid(msg)
}

fn poisoned_16(gpu: &Gpu, n: usize) -> Result<CudaSlice<u16>> {
    upload(gpu, &vec![POISON_16; n])
}

fn bits(dtype: DType, x: &[f32]) -> Vec<u16> {
    match dtype {
        DType::F16 => reference::f32_to_f16_bits(x),
        _ => reference::f32_to_bf16_bits(x),
    }
}

fn unbits(dtype: DType, x: &[u16]) -> Vec<f32> {
    match dtype {
        DType::F16 => reference::f16_bits_to_f32(x),
        _ => reference::bf16_bits_to_f32(x),
    }
}

/// Compares a 16-bit output with the f64 reference (poison reported by index).
fn compare_16(dtype: DType, out: &[u16], reference: &[f64]) -> Result<f64> {
    if let Some(i) = out.iter().position(|&b| b == POISON_16) {
        return Err(bad(format!("element {i} never written (poison)")));
    }
    compare(&unbits(dtype, out), reference, tol(dtype)).map_err(bad)
}

fn compare_f32(out: &[f32], reference: &[f64], tol: f64) -> Result<f64> {
    compare(out, reference, tol).map_err(bad)
}

fn dims_name([n, c, h, w]: [usize; 4]) -> String {
    format!("n{n} c{c} {h}x{w}")
}

pub(super) fn cases(v: &mut Vec<(String, CaseFn)>) {
    pool_cases(v);
    eltwise_cases(v);
    norm_cases(v);
    softmax_cases(v);
    concat_cases(v);
    convert_cases(v);
}

// ---------------------------------------------------------------------------------------
// Pooling

fn pool_name(p: &Pool2d, layout: Layout, dtype: DType) -> String {
    let kind = match p.kind {
        PoolKind::Max => "max",
        PoolKind::Avg => "avg",
        PoolKind::GlobalAvg => "global_avg",
    };
    let mut s = format!("pool/{kind}");
    if dtype != DType::F32 || layout != Layout::Nchw {
        s += &format!(" {dtype} {}", if layout == Layout::Nhwc { "nhwc" } else { "nchw" });
    }
    if p.kind != PoolKind::GlobalAvg {
        s += &if p.kh == p.kw { format!(" k{}", p.kh) } else { format!(" k{}x{}", p.kh, p.kw) };
        s += &if p.stride_h == p.stride_w {
            format!(" s{}", p.stride_h)
        } else {
            format!(" s{}x{}", p.stride_h, p.stride_w)
        };
        s += &if p.pad_t == p.pad_l && p.pad_t == p.pad_b && p.pad_t == p.pad_r {
            format!(" p{}", p.pad_t)
        } else {
            format!(" p{},{},{},{}", p.pad_t, p.pad_l, p.pad_b, p.pad_r)
        };
        if p.dil_h != 1 || p.dil_w != 1 {
            s += &format!(" d{}", p.dil_h);
        }
        if p.kind == PoolKind::Avg {
            s += if p.count_include_pad { " cip" } else { " nocip" };
        }
        if p.ceil_mode {
            s += " ceil";
        }
    }
    s + " " + &dims_name(p.in_dims())
}

/// A pool case through the launcher's default kernel; windows the strip kernels take
/// (`launch::max_strip_applies`) also get a ` (windowed)` case on the generic kernel.
fn push_pool(v: &mut Vec<(String, CaseFn)>, p: Pool2d, layout: Layout, dtype: DType) {
    if let Err(e) = p.validate() {
        panic!("self-test pool case is invalid: {e} ({p:?})");
    }
    v.push((pool_name(&p, layout, dtype), Box::new(move |gpu, seed| pool_case(gpu, &p, layout, dtype, seed, false))));
    if launch::max_strip_applies(&p) {
        v.push((
            format!("{} (windowed)", pool_name(&p, layout, dtype)),
            Box::new(move |gpu, seed| pool_case(gpu, &p, layout, dtype, seed, true)),
        ));
    }
}

/// The max-pool strip kernels' edge cases: output heights that are not a multiple of the
/// strip (4 rows f32, 2 rows f16), 1-row outputs, left/top padding 0-2 (taps left of the
/// input), horizontal strides 1-3 (windows overlapping, touching or skipping columns),
/// ceil-mode windows hanging past the bottom/right, asymmetric pads, odd widths, planes
/// narrower than a warp, and 8/24/64 channels in NHWC.
fn strip_pool_cases(v: &mut Vec<(String, CaseFn)>) {
    let mut i = 0usize;
    for (k, s) in [(3usize, 2usize), (3, 1), (2, 2)] {
        for pad in 0..k {
            for sw in [1usize, 2, 3] {
                for ceil in [false, true] {
                    i += 1;
                    let (n, c) = if i.is_multiple_of(2) { (3, 5) } else { (1, 8) };
                    // Heights giving 1, 2, 3, 5, ... output rows; odd widths.
                    let h = k + s * (i % 6);
                    let w = k + 2 + (i % 5) * 3;
                    let p = Pool2d::max(n, c, h, w, k, k).with_stride(s, sw).with_pad(pad, pad).with_ceil_mode(ceil);
                    if p.validate().is_err() {
                        continue;
                    }
                    push_pool(v, p, Layout::Nchw, DType::F32);
                    let q = Pool2d { c: if i.is_multiple_of(3) { 24 } else { 8 }, ..p };
                    push_pool(v, q, Layout::Nhwc, DType::F16);
                }
            }
        }
    }
    // Asymmetric (ONNX) pads, and a larger batch with 64 channels (ResNet's stem, small).
    let asym = Pool2d::max(2, 3, 11, 10, 3, 3).with_stride(2, 2).with_pads(0, 1, 2, 1).with_ceil_mode(true);
    push_pool(v, asym, Layout::Nchw, DType::F32);
    push_pool(v, Pool2d { c: 16, ..asym }, Layout::Nhwc, DType::F16);
    let stem = Pool2d::max(4, 64, 30, 30, 3, 3).with_stride(2, 2).with_pad(1, 1);
    push_pool(v, stem, Layout::Nchw, DType::F32);
    push_pool(v, stem, Layout::Nhwc, DType::F16);
}

fn pool_cases(v: &mut Vec<(String, CaseFn)>) {
    // Every window size, stride, padding and dilation, count_include_pad on and off, floor
    // and ceil mode. Inputs are sized so the (dilated) window fits; batch alternates
    // between 1 (odd 3 channels) and 8.
    let mut i = 0usize;
    for k in [1usize, 2, 3, 7] {
        for s in [1usize, 2, 3] {
            for pad in [0usize, 1, 2] {
                for d in [1usize, 2] {
                    let eff = d * (k - 1) + 1;
                    if pad >= eff {
                        continue;
                    }
                    i += 1;
                    let (n, c) = if i.is_multiple_of(2) { (8, 4) } else { (1, 3) };
                    let (h, w) = (eff + 4 + (i % 3), eff + 2 + 2 * (i % 2));
                    let ceil = !i.is_multiple_of(3);
                    let p = Pool2d::max(n, c, h, w, k, k).with_stride(s, s).with_pad(pad, pad).with_dilation(d, d);
                    push_pool(v, p.with_ceil_mode(ceil), Layout::Nchw, DType::F32);
                    if d == 1 {
                        let q = Pool2d::avg(n, c, h, w, k, k, i.is_multiple_of(2)).with_stride(s, s).with_pad(pad, pad);
                        push_pool(v, q.with_ceil_mode(!ceil), Layout::Nchw, DType::F32);
                        // Both divisors on the ceil-mode shapes whose last window hangs past
                        // the padding.
                        // (Skipping the one `q` already is.)
                        if k == 3 && s == 2 {
                            for cip in [true, false] {
                                let e = Pool2d::avg(n, c, h, w, k, k, cip)
                                    .with_stride(s, s)
                                    .with_pad(pad, pad)
                                    .with_ceil_mode(true);
                                if e != q.with_ceil_mode(!ceil) {
                                    push_pool(v, e, Layout::Nchw, DType::F32);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    // Non-square windows, strides and asymmetric (ONNX) pads.
    let odd = Pool2d::max(2, 3, 9, 8, 3, 2).with_stride(2, 1).with_pads(1, 0, 2, 1).with_ceil_mode(true);
    push_pool(v, odd, Layout::Nchw, DType::F32);
    let odd = Pool2d::avg(2, 3, 9, 8, 3, 2, true).with_stride(2, 1).with_pads(1, 0, 2, 1).with_ceil_mode(true);
    push_pool(v, odd, Layout::Nchw, DType::F32);
    let odd = Pool2d::avg(2, 3, 9, 8, 3, 2, false).with_stride(1, 3).with_pads(2, 1, 0, 1);
    push_pool(v, odd, Layout::Nchw, DType::F32);
    // Global average: odd planes, 1x1, batch 8, planes with h*w % 4 == 0.
    for (n, c, h, w) in [
        (1, 3, 7, 5),
        (1, 1, 1, 1),
        (8, 5, 3, 3),
        (2, 7, 8, 8),
        (1, 2, 56, 56),
        (3, 67, 7, 7),
        (2, 9, 5, 13),
        (2, 300, 1, 1),
    ] {
        push_pool(v, Pool2d::global_avg(n, c, h, w), Layout::Nchw, DType::F32);
    }
    // Real layers: ResNet-50 stem max pool, VGG max pool, GoogLeNet's ceil-mode max pool and
    // 3x3 s1 p1 branch pool, ResNet-50 / MobileNetV2 global pools.
    push_pool(v, Pool2d::max(1, 64, 112, 112, 3, 3).with_stride(2, 2).with_pad(1, 1), Layout::Nchw, DType::F32);
    push_pool(v, Pool2d::max(8, 64, 112, 112, 3, 3).with_stride(2, 2).with_pad(1, 1), Layout::Nchw, DType::F32);
    push_pool(v, Pool2d::max(1, 64, 224, 224, 2, 2).with_stride(2, 2), Layout::Nchw, DType::F32);
    push_pool(v, Pool2d::max(1, 64, 112, 112, 3, 3).with_stride(2, 2).with_ceil_mode(true), Layout::Nchw, DType::F32);
    push_pool(v, Pool2d::max(8, 192, 28, 28, 3, 3).with_pad(1, 1), Layout::Nchw, DType::F32);
    push_pool(v, Pool2d::global_avg(1, 2048, 7, 7), Layout::Nchw, DType::F32);
    push_pool(v, Pool2d::global_avg(8, 2048, 7, 7), Layout::Nchw, DType::F32);
    push_pool(v, Pool2d::global_avg(1, 1280, 7, 7), Layout::Nchw, DType::F32);
    push_pool(v, Pool2d::global_avg(32, 1280, 7, 7), Layout::Nchw, DType::F32);
    // NHWC f16.
    let nhwc = [
        Pool2d::max(1, 64, 112, 112, 3, 3).with_stride(2, 2).with_pad(1, 1),
        Pool2d::max(8, 16, 9, 7, 3, 3).with_stride(2, 2).with_pad(1, 1).with_ceil_mode(true),
        Pool2d::max(2, 8, 11, 10, 3, 3).with_stride(1, 1).with_pad(2, 2).with_dilation(2, 2),
        Pool2d::avg(8, 192, 28, 28, 3, 3, true).with_pad(1, 1),
        Pool2d::avg(1, 24, 9, 7, 3, 3, false).with_stride(2, 2).with_pad(1, 1).with_ceil_mode(true),
        Pool2d::avg(2, 8, 9, 7, 3, 2, true).with_stride(2, 3).with_pads(1, 0, 2, 1).with_ceil_mode(true),
        Pool2d::global_avg(8, 2048, 7, 7),
    ];
    for p in nhwc {
        push_pool(v, p, Layout::Nhwc, DType::F16);
    }
    strip_pool_cases(v);
    // The dedicated NHWC global average pool (f16, bf16, f32): odd c (one channel per
    // thread), c a multiple of the 16-byte vector, 7x7 / 1x1 / 13x13 / 56x56 planes,
    // batch 1 and 64 (the image grid-stride at 65535+ is covered by the launch-rule unit
    // test only: that input would be too large here).
    let gap = [
        (1, 2048, 7, 7),
        (64, 2048, 7, 7),
        (64, 1280, 7, 7),
        (1, 3, 7, 7),
        (64, 13, 1, 1),
        (1, 1, 1, 1),
        (2, 67, 13, 13),
        (64, 12, 13, 13),
        (3, 40, 9, 11),
        (64, 256, 13, 13),
        (2, 24, 56, 56),
        (5, 4, 2, 3),
    ];
    for dtype in [DType::F16, DType::BF16, DType::F32] {
        for (n, c, h, w) in gap {
            let p = Pool2d::global_avg(n, c, h, w);
            v.push((
                format!("{} (dedicated)", pool_name(&p, Layout::Nhwc, dtype)),
                Box::new(move |gpu, seed| global_avg_nhwc_case(gpu, &p, dtype, seed)),
            ));
        }
    }
}

fn global_avg_nhwc_case(gpu: &Gpu, p: &Pool2d, dtype: DType, seed: u64) -> Result<String> {
    let x = uniform(&mut rng(seed), p.in_len(), -1.0, 1.0);
    let xr = if dtype == DType::F32 { x } else { reference::round_through(dtype, &x) };
    let reference = reference::pool2d(p, Layout::Nhwc, &xr).map_err(|e| bad(e.to_string()))?;
    let cfg = launch::global_avg_nhwc_config(p, dtype.size_bytes());
    let rel = if dtype == DType::F32 {
        let xd = upload(gpu, &xr)?;
        let mut yd = poisoned_f32(gpu, p.out_len())?;
        launch::global_avg_pool_nhwc_f32(gpu, p, &xd, &mut yd)?;
        compare_f32(&download(gpu, &yd)?, &reference, tol(dtype))?
    } else {
        let xd = upload(gpu, &bits(dtype, &xr))?;
        let mut yd = poisoned_16(gpu, p.out_len())?;
        launch::pool2d_nhwc_half(gpu, dtype, p, &xd, &mut yd)?;
        compare_16(dtype, &download(gpu, &yd)?, &reference)?
    };
    Ok(format!("rel_l2={rel:.1e} grid {:?} block {:?}", cfg.grid_dim, cfg.block_dim))
}

fn pool_case(gpu: &Gpu, p: &Pool2d, layout: Layout, dtype: DType, seed: u64, windowed: bool) -> Result<String> {
    let x = uniform(&mut rng(seed), p.in_len(), -1.0, 1.0);
    if dtype == DType::F32 {
        let reference = reference::pool2d(p, Layout::Nchw, &x).map_err(|e| bad(e.to_string()))?;
        let xd = upload(gpu, &x)?;
        let mut yd = poisoned_f32(gpu, p.out_len())?;
        if windowed {
            launch::pool2d_f32_windowed(gpu, p, &xd, &mut yd)?;
        } else {
            launch::pool2d_f32(gpu, p, &xd, &mut yd)?;
        }
        let rel = compare_f32(&download(gpu, &yd)?, &reference, tol(dtype))?;
        Ok(format!("rel_l2={rel:.1e} out {:?}", p.out_hw()))
    } else {
        let xr = reference::round_through(dtype, &x);
        let reference = reference::pool2d(p, layout, &xr).map_err(|e| bad(e.to_string()))?;
        let xd = upload(gpu, &bits(dtype, &xr))?;
        let mut yd = poisoned_16(gpu, p.out_len())?;
        if windowed {
            launch::pool2d_f16_nhwc_windowed(gpu, p, &xd, &mut yd)?;
        } else {
            launch::pool2d_f16_nhwc(gpu, p, &xd, &mut yd)?;
        }
        let rel = compare_16(dtype, &download(gpu, &yd)?, &reference)?;
        Ok(format!("rel_l2={rel:.1e} out {:?}", p.out_hw()))
    }
}

// ---------------------------------------------------------------------------------------
// Activations and add

fn act_name(act: Act) -> String {
    match act {
        Act::None => "none".into(),
        Act::Relu => "relu".into(),
        Act::Clip { min, max } => format!("clip[{min},{max}]"),
        Act::Sigmoid => "sigmoid".into(),
        Act::Tanh => "tanh".into(),
    }
}

fn eltwise_cases(v: &mut Vec<(String, CaseFn)>) {
    let acts = [Act::None, Act::Relu, Act::RELU6, Act::Clip { min: -0.5, max: 0.25 }, Act::Sigmoid, Act::Tanh];
    // Lengths: tiny, around the vector width and the unrolled block, odd, large (the
    // ResNet-50 conv2_x activation at batch 8: 8 x 256 x 56 x 56).
    let lens = [1usize, 3, 4, 7, 1023, 4097, 1_000_003, 8 * 256 * 56 * 56];
    for (i, &len) in lens.iter().enumerate() {
        for (j, &act) in acts.iter().enumerate() {
            // All activations on the odd sizes; a rotating subset on the rest.
            if len > 5000 && (i + j) % 3 != 0 && act != Act::Relu {
                continue;
            }
            let name = format!("act/{} f32 len{len}", act_name(act));
            v.push((name, Box::new(move |gpu, seed| act_case(gpu, DType::F32, act, len, false, seed))));
        }
        for act in [Act::None, Act::Relu] {
            let name = format!("add/{} f32 len{len}", act_name(act));
            v.push((name, Box::new(move |gpu, seed| add_case(gpu, DType::F32, act, len, false, seed))));
        }
    }
    v.push((
        "act/relu f32 in-place len1000003".into(),
        Box::new(|gpu, seed| act_case(gpu, DType::F32, Act::Relu, 1_000_003, true, seed)),
    ));
    v.push((
        "add/relu f32 in-place len1000003".into(),
        Box::new(|gpu, seed| add_case(gpu, DType::F32, Act::Relu, 1_000_003, true, seed)),
    ));
    for dtype in [DType::F16, DType::BF16] {
        for (i, &len) in [1usize, 7, 8, 9, 1023, 65_543, 8 * 256 * 56 * 56].iter().enumerate() {
            let act = acts[i % acts.len()];
            let name = format!("act/{} {dtype} len{len}", act_name(act));
            v.push((name, Box::new(move |gpu, seed| act_case(gpu, dtype, act, len, false, seed))));
            let act = if i % 2 == 0 { Act::Relu } else { Act::None };
            let name = format!("add/{} {dtype} len{len}", act_name(act));
            v.push((name, Box::new(move |gpu, seed| add_case(gpu, dtype, act, len, false, seed))));
        }
    }
}

fn act_case(gpu: &Gpu, dtype: DType, act: Act, len: usize, in_place: bool, seed: u64) -> Result<String> {
    // Wide enough to saturate sigmoid/tanh and cross the clip bounds.
    let x = uniform(&mut rng(seed), len, -8.0, 8.0);
    let op = Activation { len, act };
    if dtype == DType::F32 {
        let reference = reference::activation(act, &x).map_err(|e| bad(e.to_string()))?;
        let out = if in_place {
            let mut xd = upload(gpu, &x)?;
            launch::activation_f32_in_place(gpu, &op, &mut xd)?;
            download(gpu, &xd)?
        } else {
            let xd = upload(gpu, &x)?;
            let mut yd = poisoned_f32(gpu, len)?;
            launch::activation_f32(gpu, &op, &xd, &mut yd)?;
            download(gpu, &yd)?
        };
        Ok(format!("rel_l2={:.1e}", compare_f32(&out, &reference, tol(dtype))?))
    } else {
        let xr = reference::round_through(dtype, &x);
        let reference = reference::activation(act, &xr).map_err(|e| bad(e.to_string()))?;
        let xd = upload(gpu, &bits(dtype, &xr))?;
        let mut yd = poisoned_16(gpu, len)?;
        launch::activation_half(gpu, dtype, &op, &xd, &mut yd)?;
        Ok(format!("rel_l2={:.1e}", compare_16(dtype, &download(gpu, &yd)?, &reference)?))
    }
}

fn add_case(gpu: &Gpu, dtype: DType, act: Act, len: usize, in_place: bool, seed: u64) -> Result<String> {
    let mut r = rng(seed);
    let a = uniform(&mut r, len, -1.0, 1.0);
    let b = uniform(&mut r, len, -1.0, 1.0);
    let op = Add { len, act };
    if dtype == DType::F32 {
        let reference = reference::add(&a, &b, act).map_err(|e| bad(e.to_string()))?;
        let bd = upload(gpu, &b)?;
        let out = if in_place {
            let mut ad = upload(gpu, &a)?;
            launch::add_f32_in_place(gpu, &op, &mut ad, &bd)?;
            download(gpu, &ad)?
        } else {
            let ad = upload(gpu, &a)?;
            let mut yd = poisoned_f32(gpu, len)?;
            launch::add_f32(gpu, &op, &ad, &bd, &mut yd)?;
            download(gpu, &yd)?
        };
        Ok(format!("rel_l2={:.1e}", compare_f32(&out, &reference, tol(dtype))?))
    } else {
        let (ar, br) = (reference::round_through(dtype, &a), reference::round_through(dtype, &b));
        let reference = reference::add(&ar, &br, act).map_err(|e| bad(e.to_string()))?;
        let (ad, bd) = (upload(gpu, &bits(dtype, &ar))?, upload(gpu, &bits(dtype, &br))?);
        let mut yd = poisoned_16(gpu, len)?;
        launch::add_half(gpu, dtype, &op, &ad, &bd, &mut yd)?;
        Ok(format!("rel_l2={:.1e}", compare_16(dtype, &download(gpu, &yd)?, &reference)?))
    }
}

// ---------------------------------------------------------------------------------------
// Batch-norm and LRN

fn norm_cases(v: &mut Vec<(String, CaseFn)>) {
    let bn = [
        ([1, 3, 7, 5], Act::None),
        ([1, 1, 1, 1], Act::Relu),
        ([2, 5, 3, 1], Act::RELU6),
        ([1, 3, 2, 2], Act::Sigmoid),
        ([8, 64, 56, 56], Act::Relu),
        ([8, 2048, 7, 7], Act::None),
        ([1, 32, 112, 112], Act::RELU6),
        ([3, 7, 9, 11], Act::Tanh),
        // Planes of 5, 6, 7 elements (vectors straddling two planes, the last channel's
        // plane followed by the next image's channel 0) and ResNet-50's 7x7 at batch 64.
        ([2, 3, 1, 5], Act::Relu),
        ([4, 5, 2, 3], Act::None),
        ([3, 3, 7, 1], Act::RELU6),
        ([64, 2048, 7, 7], Act::Relu),
    ];
    for (dims, act) in bn {
        let name = format!("batchnorm/{} {}", act_name(act), dims_name(dims));
        v.push((name, Box::new(move |gpu, seed| batchnorm_case(gpu, dims, act, false, seed))));
    }
    for dims in [[2, 64, 28, 28], [3, 5, 7, 7]] {
        v.push((
            format!("batchnorm/relu in-place {}", dims_name(dims)),
            Box::new(move |gpu, seed| batchnorm_case(gpu, dims, Act::Relu, true, seed)),
        ));
    }
    // The planes kernel: the same shapes plus planes of 1..3 elements (head/tail only),
    // odd planes (unaligned heads), several chunks per plane (112x112, 113x113 at 32
    // threads... 256), ResNet-50's 56x56 and 7x7 at batch 64.
    let planes = [
        ([1, 3, 7, 5], Act::None),
        ([1, 1, 1, 1], Act::Relu),
        ([2, 5, 3, 1], Act::RELU6),
        ([3, 7, 1, 2], Act::None),
        ([1, 3, 2, 2], Act::Sigmoid),
        ([3, 7, 9, 11], Act::Tanh),
        ([2, 3, 112, 112], Act::Relu),
        ([2, 5, 113, 113], Act::None),
        ([1, 32, 112, 112], Act::RELU6),
        ([64, 64, 56, 56], Act::Relu),
        ([64, 2048, 7, 7], Act::None),
        ([8, 256, 14, 14], Act::Relu),
    ];
    for (dims, act) in planes {
        let name = format!("batchnorm_planes/{} {}", act_name(act), dims_name(dims));
        v.push((name, Box::new(move |gpu, seed| batchnorm_planes_case(gpu, dims, act, false, seed))));
    }
    for dims in [[2, 64, 28, 28], [3, 5, 7, 7]] {
        v.push((
            format!("batchnorm_planes/relu in-place {}", dims_name(dims)),
            Box::new(move |gpu, seed| batchnorm_planes_case(gpu, dims, Act::Relu, true, seed)),
        ));
    }
    // LRN: odd shapes, even and odd window sizes (ONNX's floor/ceil window), the general
    // power path (beta != 0.75) and strong normalisation (alpha = 1), the vector path
    // (h*w % 4 == 0), AlexNet's two LRN layers (torchvision: size 5, alpha 1e-4, beta
    // 0.75, k = 2) at batch 1 and 8.
    let lrn = [
        Lrn::new(1, 3, 7, 5, 3).with_params(1.0, 0.75, 1.0),
        Lrn::new(1, 3, 7, 5, 2).with_params(1.0, 0.75, 1.0),
        Lrn::new(2, 6, 5, 4, 4).with_params(2.0, 0.5, 0.5),
        Lrn::new(1, 4, 3, 3, 1).with_params(1.0, 1.0, 2.0),
        Lrn::new(2, 8, 4, 4, 5).with_params(1.0, 0.75, 2.0),
        Lrn::new(1, 5, 3, 3, 7).with_params(0.5, 0.6, 1.5),
        Lrn::new(1, 64, 55, 55, 5).with_params(1e-4, 0.75, 2.0),
        Lrn::new(8, 64, 55, 55, 5).with_params(1e-4, 0.75, 2.0),
        Lrn::new(1, 192, 27, 27, 5).with_params(1e-4, 0.75, 2.0),
        Lrn::new(1, 64, 56, 56, 5).with_params(1e-4, 0.75, 1.0),
    ];
    for p in lrn {
        let name = format!("lrn/size{} a{} b{} k{} {}", p.size, p.alpha, p.beta, p.bias, dims_name(p.dims()));
        v.push((name, Box::new(move |gpu, seed| lrn_case(gpu, &p, seed))));
    }
}

fn batchnorm_case(gpu: &Gpu, dims: [usize; 4], act: Act, in_place: bool, seed: u64) -> Result<String> {
    let [n, c, h, w] = dims;
    let p = BatchNorm::new(n, c, h, w);
    let mut r = rng(seed);
    let x = uniform(&mut r, p.len(), -2.0, 2.0);
    let gamma = uniform(&mut r, c, 0.5, 1.5);
    let beta = uniform(&mut r, c, -0.5, 0.5);
    let mean = uniform(&mut r, c, -0.5, 0.5);
    let var = uniform(&mut r, c, 0.5, 1.5);
    let (scale, shift) =
        reference::fold_batch_norm(&gamma, &beta, &mean, &var, p.eps).map_err(|e| bad(e.to_string()))?;
    let reference: Vec<f64> = reference::batch_norm(&p, Layout::Nchw, &x, &gamma, &beta, &mean, &var)
        .map_err(|e| bad(e.to_string()))?
        .into_iter()
        .map(|v| act.apply(v))
        .collect();
    let (sd, td) = (upload(gpu, &scale)?, upload(gpu, &shift)?);
    let out = if in_place {
        let mut xd = upload(gpu, &x)?;
        launch::batch_norm_f32_in_place(gpu, &p, act, &mut xd, &sd, &td)?;
        download(gpu, &xd)?
    } else {
        let xd = upload(gpu, &x)?;
        let mut yd = poisoned_f32(gpu, p.len())?;
        launch::batch_norm_f32(gpu, &p, act, &xd, &sd, &td, &mut yd)?;
        download(gpu, &yd)?
    };
    Ok(format!("rel_l2={:.1e}", compare_f32(&out, &reference, tol(DType::F32))?))
}

fn batchnorm_planes_case(gpu: &Gpu, dims: [usize; 4], act: Act, in_place: bool, seed: u64) -> Result<String> {
    let [n, c, h, w] = dims;
    let p = BatchNorm::new(n, c, h, w);
    let mut r = rng(seed);
    let x = uniform(&mut r, p.len(), -2.0, 2.0);
    let gamma = uniform(&mut r, c, 0.5, 1.5);
    let beta = uniform(&mut r, c, -0.5, 0.5);
    let mean = uniform(&mut r, c, -0.5, 0.5);
    let var = uniform(&mut r, c, 0.5, 1.5);
    let (scale, shift) =
        reference::fold_batch_norm(&gamma, &beta, &mean, &var, p.eps).map_err(|e| bad(e.to_string()))?;
    let reference: Vec<f64> = reference::batch_norm(&p, Layout::Nchw, &x, &gamma, &beta, &mean, &var)
        .map_err(|e| bad(e.to_string()))?
        .into_iter()
        .map(|v| act.apply(v))
        .collect();
    let (sd, td) = (upload(gpu, &scale)?, upload(gpu, &shift)?);
    let out = if in_place {
        let mut xd = upload(gpu, &x)?;
        launch::batch_norm_f32_planes_in_place(gpu, &p, act, &mut xd, &sd, &td)?;
        download(gpu, &xd)?
    } else {
        let xd = upload(gpu, &x)?;
        let mut yd = poisoned_f32(gpu, p.len())?;
        launch::batch_norm_f32_planes(gpu, &p, act, &xd, &sd, &td, &mut yd)?;
        download(gpu, &yd)?
    };
    let cfg = launch::planes_config(&p, gpu.info.sm_count);
    Ok(format!(
        "rel_l2={:.1e} grid {} block {}",
        compare_f32(&out, &reference, tol(DType::F32))?,
        cfg.grid_dim.0,
        cfg.block_dim.0
    ))
}

fn lrn_case(gpu: &Gpu, p: &Lrn, seed: u64) -> Result<String> {
    // AlexNet-like magnitudes (post-ReLU activations reach ~10).
    let x = uniform(&mut rng(seed), p.len(), -4.0, 4.0);
    let reference = reference::lrn(p, Layout::Nchw, &x).map_err(|e| bad(e.to_string()))?;
    let xd = upload(gpu, &x)?;
    let mut yd = poisoned_f32(gpu, p.len())?;
    launch::lrn_f32(gpu, p, &xd, &mut yd)?;
    Ok(format!("rel_l2={:.1e}", compare_f32(&download(gpu, &yd)?, &reference, tol(DType::F32))?))
}

// ---------------------------------------------------------------------------------------
// Softmax

fn softmax_cases(v: &mut Vec<(String, CaseFn)>) {
    // (rows, cols, input scale): classifier heads (1000 classes at batch 1 and 64), odd and
    // tiny rows (warp-group path), rows that are not a multiple of 4 (scalar path), long
    // rows (block path), and large logits where a naive exp overflows.
    let shapes = [
        (1usize, 1000usize, 4.0f32),
        (64, 1000, 4.0),
        (1, 1, 1.0),
        (5, 1, 1.0),
        (3, 7, 3.0),
        (33, 10, 3.0),
        (1000, 16, 3.0),
        (2, 1001, 4.0),
        (7, 513, 4.0),
        (4, 100_000, 4.0),
        (3, 16_388, 4.0),
        (3, 1000, 200.0),
        (4096, 128, 5.0),
    ];
    for (rows, cols, scale) in shapes {
        let name = format!("softmax/rows{rows} cols{cols}{}", if scale > 100.0 { " large-logits" } else { "" });
        v.push((name, Box::new(move |gpu, seed| softmax_case(gpu, rows, cols, scale, false, seed))));
    }
    v.push((
        "softmax/in-place rows64 cols1000".into(),
        Box::new(|gpu, seed| softmax_case(gpu, 64, 1000, 4.0, true, seed)),
    ));
}

fn softmax_case(gpu: &Gpu, rows: usize, cols: usize, scale: f32, in_place: bool, seed: u64) -> Result<String> {
    let p = Softmax::rows(rows, cols);
    let x = uniform(&mut rng(seed), p.total_len(), -scale, scale);
    let reference = reference::softmax(&p, &x).map_err(|e| bad(e.to_string()))?;
    let out = if in_place {
        let mut xd = upload(gpu, &x)?;
        launch::softmax_f32_in_place(gpu, &p, &mut xd)?;
        download(gpu, &xd)?
    } else {
        let xd = upload(gpu, &x)?;
        let mut yd = poisoned_f32(gpu, p.total_len())?;
        launch::softmax_f32(gpu, &p, &xd, &mut yd)?;
        download(gpu, &yd)?
    };
    let (bx, by) = launch::softmax_block(cols);
    Ok(format!("rel_l2={:.1e} block {bx}x{by}", compare_f32(&out, &reference, tol(DType::F32))?))
}

// ---------------------------------------------------------------------------------------
// Concat

fn concat_cases(v: &mut Vec<(String, CaseFn)>) {
    // GoogLeNet inception (3a) output: 64 + 128 + 32 + 32 channels at 28x28, batch 1 and 8;
    // odd planes (scalar path), 7x7 planes whose channel runs are still multiples of 4.
    let sets: [(&[usize], [usize; 3]); 5] = [
        (&[64, 128, 32, 32], [1, 28, 28]),
        (&[64, 128, 32, 32], [8, 28, 28]),
        (&[3, 5, 1], [2, 7, 5]),
        (&[256, 320, 128, 128], [4, 7, 7]),
        (&[1, 2, 3], [1, 1, 1]),
    ];
    for (parts, [n, h, w]) in sets {
        let parts = parts.to_vec();
        let name = format!("concat/{} n{n} {h}x{w}", parts.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("+"));
        v.push((name, Box::new(move |gpu, seed| concat_case(gpu, &parts, [n, h, w], seed))));
    }
}

fn concat_case(gpu: &Gpu, parts: &[usize], [n, h, w]: [usize; 3], seed: u64) -> Result<String> {
    let mut r = rng(seed);
    let inputs: Vec<Vec<f32>> = parts.iter().map(|&c| uniform(&mut r, n * c * h * w, -1.0, 1.0)).collect();
    let views: Vec<(&[f32], usize)> = inputs.iter().zip(parts).map(|(x, &c)| (x.as_slice(), c)).collect();
    let reference = reference::concat_channels(&views, [n, h, w], Layout::Nchw).map_err(|e| bad(e.to_string()))?;
    let total: usize = parts.iter().sum();
    let mut yd = poisoned_f32(gpu, n * total * h * w)?;
    let mut offset = 0;
    for (x, &c) in inputs.iter().zip(parts) {
        let xd = upload(gpu, x)?;
        launch::concat_channels_f32(gpu, [n, c, h * w], total, offset, &xd, &mut yd)?;
        offset += c;
    }
    // A copy: exact.
    Ok(format!("rel_l2={:.1e}", compare_f32(&download(gpu, &yd)?, &reference, 0.0)?))
}

// ---------------------------------------------------------------------------------------
// Conversions

fn convert_cases(v: &mut Vec<(String, CaseFn)>) {
    for dtype in [DType::F16, DType::BF16] {
        for len in [1usize, 7, 8, 9, 1001, 65_536 + 5, 8 * 64 * 112 * 112] {
            v.push((
                format!("convert/f32_to_{dtype} len{len}"),
                Box::new(move |gpu, seed| narrow_case(gpu, dtype, len, seed)),
            ));
            v.push((
                format!("convert/{dtype}_to_f32 len{len}"),
                Box::new(move |gpu, seed| widen_case(gpu, dtype, len, seed)),
            ));
        }
    }
    let shapes = [
        [1, 3, 7, 5],
        [2, 33, 17, 19],
        [1, 3, 224, 224],
        [8, 64, 56, 56],
        [1, 512, 7, 7],
        [1, 1, 1, 1],
        [4, 8, 15, 17],
        [2, 9, 13, 11],
        [3, 130, 5, 13],
    ];
    for dims in shapes {
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            for to in [Layout::Nhwc, Layout::Nchw] {
                let dir = if to == Layout::Nhwc { "nchw_to_nhwc" } else { "nhwc_to_nchw" };
                let name = format!("convert/{dir} {dtype} {}", dims_name(dims));
                v.push((name, Box::new(move |gpu, seed| transpose_case(gpu, dtype, dims, to, seed))));
            }
        }
        for dtype in [DType::F16, DType::BF16] {
            let name = format!("convert/nchw_f32_to_nhwc_{dtype} {}", dims_name(dims));
            v.push((name, Box::new(move |gpu, seed| fused_case(gpu, dtype, dims, seed, false))));
        }
    }
    // The eight-pixels-per-thread input conversion: every c in 1..=8, hw a multiple of 8
    // (224x224, 8x8, 4x6, 16x3), the network input at batch 1 and 64, and shapes it
    // does not take (odd plane, c = 9) to check the fallback.
    let pix8 = [
        [1, 3, 224, 224],
        [64, 3, 224, 224],
        [2, 1, 8, 8],
        [3, 2, 4, 6],
        [2, 3, 16, 3],
        [1, 4, 2, 4],
        [2, 5, 8, 1],
        [1, 6, 4, 4],
        [3, 7, 8, 3],
        [2, 8, 6, 4],
        [1, 3, 7, 5],
        [2, 9, 8, 8],
    ];
    for dims in pix8 {
        for dtype in [DType::F16, DType::BF16] {
            let name = format!("convert/nchw_f32_to_nhwc_pix8_{dtype} {}", dims_name(dims));
            v.push((name, Box::new(move |gpu, seed| fused_case(gpu, dtype, dims, seed, true))));
        }
    }
    // The input conversion padded to 8 channels (feeds conv1 on the tensor cores' fast
    // path): c in 1..=8, odd planes (any hw is taken), the network input at batch 1 and 64.
    let pad8 = [
        [1, 3, 224, 224],
        [64, 3, 224, 224],
        [2, 1, 7, 5],
        [3, 3, 5, 3],
        [1, 3, 1, 1],
        [2, 2, 3, 3],
        [1, 4, 9, 1],
        [2, 5, 2, 7],
        [1, 6, 3, 5],
        [3, 7, 11, 3],
        [2, 8, 5, 5],
    ];
    for dims in pad8 {
        for dtype in [DType::F16, DType::BF16] {
            let name = format!("convert/nchw_f32_to_nhwc_pad8_{dtype} {}", dims_name(dims));
            v.push((name, Box::new(move |gpu, seed| pad8_case(gpu, dtype, dims, seed))));
        }
    }
}

/// Random values plus the cases rounding must get right: ties, overflow, subnormals,
/// infinities, NaN, signed zeros.
fn tricky_f32(len: usize, seed: u64) -> Vec<f32> {
    let special = [
        0.0f32,
        -0.0,
        1.0 + 2f32.powi(-11),
        1.0 + 3.0 * 2f32.powi(-11),
        1.0 + 2f32.powi(-8),
        1.0 + 3.0 * 2f32.powi(-8),
        65504.0,
        65520.0,
        -65520.0,
        2f32.powi(-24),
        2f32.powi(-25),
        3.0 * 2f32.powi(-26),
        1e-30,
        f32::MAX,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        1.0 / 3.0,
    ];
    let mut r = rng(seed);
    (0..len)
        .map(|i| {
            if i % 7 == 3 {
                special[(i / 7) % special.len()]
            } else {
                // Log-uniform magnitudes over f16's range and beyond.
                let m: f32 = r.random_range(-30.0..20.0);
                let s = if r.random::<bool>() { 1.0 } else { -1.0 };
                s * r.random_range(1.0f32..2.0) * m.exp2()
            }
        })
        .collect()
}

/// Bit-exact comparison; NaN matches any NaN.
fn same_bits_16(dtype: DType, got: &[u16], want: &[u16]) -> Result<()> {
    let is_nan = |b: u16| match dtype {
        DType::F16 => b & 0x7c00 == 0x7c00 && b & 0x03ff != 0,
        _ => b & 0x7f80 == 0x7f80 && b & 0x007f != 0,
    };
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if g != w && !(is_nan(g) && is_nan(w) && g != POISON_16) {
            let what = if g == POISON_16 { " (poison: never written)" } else { "" };
            return Err(bad(format!("element {i}: got {g:#06x}{what}, want {w:#06x}")));
        }
    }
    Ok(())
}

fn same_bits_f32(got: &[f32], want: &[f32]) -> Result<()> {
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if g.to_bits() != w.to_bits() && !(g.is_nan() && w.is_nan() && g.to_bits() != super::POISON_F32.to_bits()) {
            return Err(bad(format!("element {i}: got {g} ({:#010x}), want {w} ({:#010x})", g.to_bits(), w.to_bits())));
        }
    }
    Ok(())
}

fn narrow_case(gpu: &Gpu, dtype: DType, len: usize, seed: u64) -> Result<String> {
    let x = tricky_f32(len, seed);
    let want = bits(dtype, &x);
    let xd = upload(gpu, &x)?;
    let mut yd = poisoned_16(gpu, len)?;
    launch::f32_to_half(gpu, dtype, len, &xd, &mut yd)?;
    same_bits_16(dtype, &download(gpu, &yd)?, &want)?;
    Ok("bit-exact".into())
}

fn widen_case(gpu: &Gpu, dtype: DType, len: usize, seed: u64) -> Result<String> {
    // Every bit pattern class: random 16-bit words (normals, subnormals, inf, NaN).
    let mut r = rng(seed);
    let x: Vec<u16> = (0..len).map(|_| r.random()).collect();
    let want = unbits(dtype, &x);
    let xd = upload(gpu, &x)?;
    let mut yd = poisoned_f32(gpu, len)?;
    launch::half_to_f32(gpu, dtype, len, &xd, &mut yd)?;
    same_bits_f32(&download(gpu, &yd)?, &want)?;
    Ok("bit-exact".into())
}

fn transpose_case(gpu: &Gpu, dtype: DType, dims: [usize; 4], to: Layout, seed: u64) -> Result<String> {
    let len = dims.iter().product();
    let from = if to == Layout::Nhwc { Layout::Nchw } else { Layout::Nhwc };
    let mut r = rng(seed);
    if dtype == DType::F32 {
        let x = uniform(&mut r, len, -1.0, 1.0);
        let want = reference::to_layout(&x, dims, from, to).map_err(|e| bad(e.to_string()))?;
        let xd = upload(gpu, &x)?;
        let mut yd = poisoned_f32(gpu, len)?;
        launch::transpose_f32(gpu, dims, to, &xd, &mut yd)?;
        same_bits_f32(&download(gpu, &yd)?, &want)?;
    } else {
        let x: Vec<u16> = (0..len).map(|_| r.random_range(0..0x7c00u16)).collect();
        let want = reference::to_layout(&x, dims, from, to).map_err(|e| bad(e.to_string()))?;
        let xd = upload(gpu, &x)?;
        let mut yd = poisoned_16(gpu, len)?;
        launch::transpose_half(gpu, dtype, dims, to, &xd, &mut yd)?;
        same_bits_16(dtype, &download(gpu, &yd)?, &want)?;
    }
    Ok("bit-exact".into())
}

fn fused_case(gpu: &Gpu, dtype: DType, dims: [usize; 4], seed: u64, pix8: bool) -> Result<String> {
    let len = dims.iter().product();
    let x = tricky_f32(len, seed);
    let want = reference::nchw_to_nhwc(&bits(dtype, &x), dims).map_err(|e| bad(e.to_string()))?;
    let xd = upload(gpu, &x)?;
    let mut yd = poisoned_16(gpu, len)?;
    if pix8 {
        launch::nchw_f32_to_nhwc_half_pix8(gpu, dtype, dims, &xd, &mut yd)?;
    } else {
        launch::nchw_f32_to_nhwc_half(gpu, dtype, dims, &xd, &mut yd)?;
    }
    same_bits_16(dtype, &download(gpu, &yd)?, &want)?;
    Ok(if pix8 && !launch::pix8_applies(dims) { "bit-exact (fallback kernel)".into() } else { "bit-exact".into() })
}

/// Expected output of `convert_nchw_f32_to_nhwc_pad8_*`: element `(pixel, k)` of the
/// `[n·hw, 8]` output is channel `k` of that pixel (rounded) for `k < c`, else +0 bits.
fn pad8_want(dtype: DType, x: &[f32], dims: [usize; 4]) -> Vec<u16> {
    let [n, c, h, w] = dims;
    let hw = h * w;
    let xb = bits(dtype, x);
    let mut want = vec![0u16; n * hw * 8];
    for img in 0..n {
        for ch in 0..c {
            for q in 0..hw {
                want[(img * hw + q) * 8 + ch] = xb[(img * c + ch) * hw + q];
            }
        }
    }
    want
}

fn pad8_case(gpu: &Gpu, dtype: DType, dims: [usize; 4], seed: u64) -> Result<String> {
    let len = dims.iter().product();
    let x = tricky_f32(len, seed);
    let want = pad8_want(dtype, &x, dims);
    let xd = upload(gpu, &x)?;
    // Poisoned everywhere, the padding lanes included: they must come back exactly +0.
    let mut yd = poisoned_16(gpu, want.len())?;
    launch::nchw_f32_to_nhwc_half_pad8(gpu, dtype, dims, &xd, &mut yd)?;
    let got = download(gpu, &yd)?;
    if got.len() != want.len() {
        return Err(bad(format!("downloaded {} halves, want {}", got.len(), want.len())));
    }
    same_bits_16(dtype, &got, &want)?;
    Ok("bit-exact, padding lanes +0".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names_are_unique_and_cover_the_new_kernels() {
        let mut v = Vec::new();
        cases(&mut v);
        let names: Vec<&str> = v.iter().map(|(n, _)| n.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        let dups: Vec<&&str> = sorted.windows(2).filter(|w| w[0] == w[1]).map(|w| &w[0]).collect();
        assert!(dups.is_empty(), "duplicate case names: {dups:?}");
        for dt in ["f16", "bf16", "f32"] {
            let gap = format!("pool/global_avg {dt} nhwc n64 c2048 7x7 (dedicated)");
            assert!(names.contains(&gap.as_str()), "{gap}");
        }
        assert!(names.contains(&"batchnorm_planes/relu n64 c64 56x56"));
        // The strip max pools, and the windowed kernel on the same windows.
        for n in ["pool/max k3 s2 p1 n4 c64 30x30", "pool/max f16 nhwc k3 s2 p1 n4 c64 30x30"] {
            assert!(names.contains(&n), "{n}");
            assert!(names.contains(&format!("{n} (windowed)").as_str()), "{n} (windowed)");
        }
        assert!(names.contains(&"convert/nchw_f32_to_nhwc_pix8_f16 n64 c3 224x224"));
        assert!(names.contains(&"convert/nchw_f32_to_nhwc_pad8_f16 n64 c3 224x224"));
        assert!(names.contains(&"convert/nchw_f32_to_nhwc_pad8_f16 n1 c3 224x224"));
    }

    #[test]
    fn pad8_expectation_by_hand() {
        // [1, 2, 1, 2]: channel 0 = [1, 2], channel 1 = [3, 4] → pixels (1, 3), (2, 4).
        let want = pad8_want(DType::F16, &[1.0, 2.0, 3.0, 4.0], [1, 2, 1, 2]);
        let (one, two, three, four) = (0x3c00, 0x4000, 0x4200, 0x4400);
        assert_eq!(want, vec![one, three, 0, 0, 0, 0, 0, 0, two, four, 0, 0, 0, 0, 0, 0]);
    }
}
