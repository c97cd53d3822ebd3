//! Self-test cases for the tensor-core kernels (`launch::tensorcore`): implicit-GEMM conv
//! (f16, bf16, tf32) on odd and tile-edge shapes, `c_in` not a multiple of 8 (the gather
//! kernels, ResNet's `c_in = 3` stem), strides 1/2, pads 0/1/2/3 and asymmetric,
//! dilation 2, 1×1 / 3×3 / 5×3 / 7×7 kernels, batch 1/2/4, every epilogue combination,
//! real ResNet-50 / VGG-16 layers at batch 1; GEMM on odd sizes, `k % 8 != 0`, padded
//! leading dimensions with `alpha`/`beta`, and ResNet-50's FC at batch 8. The `perf`
//! cases run ResNet-50's 3×3 layers at batch 64: every output element checked finite,
//! 512 sampled elements checked against an f64 dot product, and the throughput printed.
//!
//! 16-bit outputs are poisoned with NaN bits (0x7e00 f16, 0x7fc0 bf16) before the launch;
//! references are computed in f64 on the inputs rounded to the kernel's input type
//! (tf32 kernels: on the f32 inputs, the tf32 rounding is part of the error budget).
//! Tolerances (relative L2): 1e-2 for f16/bf16, 5e-3 for tf32.

use cudarc::driver::{CudaSlice, ValidAsZeroBits};

use super::buf::{download, upload};
use super::{compare, epi_name, shape_name, CaseFn, POISON_F32};
use crate::error::Error;
use crate::gpu::Gpu;
use crate::launch::tensorcore::{self as tc, ConvOperands, GemmTc, Launched, TcElem};
use crate::ops::{Act, Conv2d, DType, Epilogue, Layout};
use crate::reference::{self, random_uniform, random_uniform_in, EpilogueArgs};
use crate::shapes;

const DTYPES: [DType; 3] = [DType::F16, DType::BF16, DType::F32];

fn tol(dtype: DType) -> f64 {
    if dtype == DType::F32 {
        5e-3
    } else {
        1e-2
    }
}

fn kernel_name(dtype: DType) -> &'static str {
    match dtype {
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::F32 => "tf32",
    }
}

/// Host element of a tensor-core buffer, with the conversions the cases need.
trait Elem: TcElem + ValidAsZeroBits + Default + Clone {
    fn encode(dtype: DType, x: &[f32]) -> Vec<Self>;
    fn decode(dtype: DType, x: &[Self]) -> Vec<f32>;
    fn poison(dtype: DType) -> Self;
}

impl Elem for u16 {
    fn encode(dtype: DType, x: &[f32]) -> Vec<u16> {
        if dtype == DType::F16 {
            reference::f32_to_f16_bits(x)
        } else {
            reference::f32_to_bf16_bits(x)
        }
    }
    fn decode(dtype: DType, x: &[u16]) -> Vec<f32> {
        if dtype == DType::F16 {
            reference::f16_bits_to_f32(x)
        } else {
            reference::bf16_bits_to_f32(x)
        }
    }
    fn poison(dtype: DType) -> u16 {
        if dtype == DType::F16 {
            0x7e00
        } else {
            0x7fc0
        }
    }
}

impl Elem for f32 {
    fn encode(_: DType, x: &[f32]) -> Vec<f32> {
        x.to_vec()
    }
    fn decode(_: DType, x: &[f32]) -> Vec<f32> {
        x.to_vec()
    }
    fn poison(_: DType) -> f32 {
        POISON_F32
    }
}

fn bad(e: impl ToString) -> Error {
    Error::Invalid(e.to_string())
}

fn sub_seed(seed: u64, i: u64) -> u64 {
    seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

const BIAS_RELU: Epilogue = Epilogue { bias: true, scale_shift: false, act: Act::Relu, residual: false };
const BN_RELU: Epilogue = Epilogue { bias: false, scale_shift: true, act: Act::Relu, residual: false };
const BN_RES_RELU: Epilogue = Epilogue { bias: false, scale_shift: true, act: Act::Relu, residual: true };

pub(super) fn cases(v: &mut Vec<(String, CaseFn)>) {
    let shapes = [
        ("odd-tiny", Conv2d::new(1, 8, 7, 5, 5, 3, 3).with_pad(1, 1), BIAS_RELU),
        ("tile-edges", Conv2d::new(2, 24, 13, 11, 70, 3, 3).with_pad(1, 1), BN_RES_RELU),
        ("tile-edges-n130", Conv2d::new(1, 32, 12, 12, 130, 3, 3).with_pad(1, 1), BIAS_RELU),
        ("cin3-k7-s2 (gather)", Conv2d::new(2, 3, 23, 19, 16, 7, 7).with_stride(2, 2).with_pad(3, 3), BN_RELU),
        ("cin12 (gather f16/bf16)", Conv2d::new(2, 12, 9, 9, 20, 3, 3).with_pad(1, 1), BIAS_RELU),
        ("cin6 (gather all)", Conv2d::new(1, 6, 10, 8, 9, 3, 3), BIAS_RELU),
        ("k1-s2", Conv2d::new(2, 16, 9, 9, 32, 1, 1).with_stride(2, 2), BIAS_RELU),
        ("k1-b4", Conv2d::new(4, 64, 7, 7, 130, 1, 1), BN_RES_RELU),
        ("dilation2", Conv2d::new(1, 16, 12, 12, 24, 3, 3).with_pad(2, 2).with_dilation(2, 2), BIAS_RELU),
        ("asym-pad-k5x3", Conv2d::new(1, 40, 11, 9, 33, 5, 3).with_stride(2, 1).with_pads(0, 1, 2, 3), BIAS_RELU),
        ("pad0-b4", Conv2d::new(4, 32, 10, 10, 136, 3, 3), BIAS_RELU),
        ("long-k", Conv2d::new(1, 256, 6, 6, 64, 3, 3).with_pad(1, 1), BN_RELU),
        ("k7-p3-s1", Conv2d::new(1, 8, 9, 9, 16, 7, 7).with_pad(3, 3), BIAS_RELU),
        // c_out <= 64 runs the 256 x 64 tile: several M tiles, a partial last one.
        ("n64-tiles", Conv2d::new(2, 16, 15, 17, 64, 3, 3).with_pad(1, 1), BN_RES_RELU),
        ("n64-s2-co37", Conv2d::new(1, 8, 23, 21, 37, 3, 3).with_stride(2, 2).with_pad(1, 1), BIAS_RELU),
    ];
    for dtype in DTYPES {
        for (label, c, epi) in shapes {
            push_conv(v, dtype, label, c, epi);
        }
    }
    // Every epilogue combination, per type, in one case each.
    for dtype in DTYPES {
        v.push((
            format!("tensorcore/conv {} epilogue: all 40 combinations", kernel_name(dtype)),
            Box::new(move |gpu, seed| epilogue_combos(gpu, dtype, seed)),
        ));
    }
    // Real layers at batch 1.
    let find = |table: Vec<shapes::ConvShape>, pred: &dyn Fn(&Conv2d) -> bool| {
        table.into_iter().find(|(_, c, _)| pred(c)).expect("layer missing from shapes table")
    };
    let real = [
        find(shapes::resnet50_convs(1), &|c| c.kh == 7),
        find(shapes::resnet50_convs(1), &|c| c.kh == 3 && c.c_in == 64 && c.h == 56),
        find(shapes::resnet50_convs(1), &|c| c.kh == 3 && c.c_in == 256 && c.h == 14 && c.stride_h == 1),
        find(shapes::resnet50_convs(1), &|c| c.kh == 3 && c.c_in == 256 && c.stride_h == 2),
        find(shapes::resnet50_convs(1), &|c| c.kh == 1 && c.c_in == 1024 && c.c_out == 256),
        find(shapes::vgg16_convs(1), &|c| c.c_in == 256 && c.c_out == 256 && c.h == 56),
    ];
    for dtype in DTYPES {
        for (label, c, _) in &real {
            let epi = if c.kh == 1 { BN_RES_RELU } else { BN_RELU };
            push_conv(v, dtype, &format!("real {label}"), *c, epi);
        }
    }
    // ResNet-50's conv1 as the f16 plan runs it: input padded to 8 channels (fast kernel).
    let conv1 = Conv2d { c_in: 8, ..find(shapes::resnet50_convs(1), &|c| c.kh == 7).1 };
    for dtype in DTYPES {
        push_conv(v, dtype, "real resnet50 conv1 padded to c_in 8", conv1, BN_RELU);
    }
    // GEMM.
    let gemms = [
        ("odd 37x61x48", GemmTc::new(37, 61, 48).with_act(Act::Relu), true),
        ("k%8!=0 37x61x45 (gather)", GemmTc::new(37, 61, 45), true),
        ("k%4!=0 20x9x30 (gather all)", GemmTc::new(20, 9, 30).with_act(Act::Tanh), false),
        (
            "ld-padded alpha/beta 150x140x72 ldc=141",
            GemmTc::new(150, 140, 72).with_ld(80, 88, 141).with_scalars(2.0, 0.5).with_act(Act::RELU6),
            true,
        ),
        ("multi-tile 300x260x520", GemmTc::new(300, 260, 520), false),
        ("fc resnet50 8x1000x2048", GemmTc::new(8, 1000, 2048), true),
    ];
    for dtype in DTYPES {
        for (label, g, bias) in gemms {
            push_gemm(v, dtype, label, g, bias, GemmPath::Plain);
        }
    }
    // Split-K: every split count 1..=16 (f16) on a K that is not a multiple of the
    // 32-element slice, with partial M and N tiles; a few counts for bf16/tf32; the
    // gather kernels (k % 8 != 0, k % 4 != 0); the scalar reduce path (n % 4 != 0, padded
    // ldc, alpha/beta, activation); more splits than slices; and the launch rule (auto)
    // on the VGG-16 / ResNet-50 classifiers at batch 64 and 1.
    let splitk_shape = GemmTc::new(37, 132, 1000).with_act(Act::Relu);
    for splits in 1..=16 {
        push_gemm(v, DType::F16, "37x132x1000", splitk_shape, true, GemmPath::SplitK(splits));
    }
    for dtype in [DType::BF16, DType::F32] {
        for splits in [1, 3, 7, 16] {
            push_gemm(v, dtype, "37x132x1000", splitk_shape, true, GemmPath::SplitK(splits));
        }
    }
    let splitk_odd = [
        ("k%8!=0 37x61x1001 (gather)", GemmTc::new(37, 61, 1001), true, 4),
        ("k%4!=0 20x9x1002 (gather all)", GemmTc::new(20, 9, 1002).with_act(Act::Tanh), false, 5),
        (
            "ld-padded alpha/beta 150x140x520 ldc=141",
            GemmTc::new(150, 140, 520).with_ld(528, 536, 141).with_scalars(2.0, 0.5).with_act(Act::RELU6),
            true,
            3,
        ),
        ("beta 130x256x512", GemmTc::new(130, 256, 512).with_scalars(1.0, -1.0), false, 6),
        ("more splits than slices 5x8x40", GemmTc::new(5, 8, 40), true, 16),
    ];
    for dtype in DTYPES {
        for (label, g, bias, splits) in splitk_odd {
            push_gemm(v, dtype, label, g, bias, GemmPath::SplitK(splits));
        }
    }
    let fcs = [
        ("fc vgg16.0 64x4096x25088", GemmTc::new(64, 4096, 25088).with_act(Act::Relu)),
        ("fc vgg16.0 1x4096x25088", GemmTc::new(1, 4096, 25088).with_act(Act::Relu)),
        ("fc vgg16.6 64x1000x4096", GemmTc::new(64, 1000, 4096)),
        ("fc resnet50 64x1000x2048", GemmTc::new(64, 1000, 2048)),
    ];
    for (label, g) in fcs {
        push_gemm(v, DType::F16, label, g, true, GemmPath::Auto);
    }
    push_gemm(v, DType::BF16, fcs[3].0, fcs[3].1, true, GemmPath::Auto);
    push_gemm(v, DType::F32, fcs[3].0, fcs[3].1, true, GemmPath::Auto);
    // Throughput on ResNet-50's 3x3 layers at batch 64 (sampled check).
    for dtype in [DType::F16, DType::BF16, DType::F32] {
        for (label, c, _) in shapes::resnet50_convs(64) {
            if c.kh == 3 && c.stride_h == 1 {
                v.push((
                    format!("tensorcore/perf {} {label} n64 bn+relu", kernel_name(dtype)),
                    Box::new(move |gpu, seed| perf_conv(gpu, dtype, &c, seed)),
                ));
            }
        }
    }
}

fn push_conv(v: &mut Vec<(String, CaseFn)>, dtype: DType, label: &str, c: Conv2d, epi: Epilogue) {
    let name = format!("tensorcore/conv {} {label} {} {}", kernel_name(dtype), shape_name(&c), epi_name(&epi));
    v.push((name, Box::new(move |gpu, seed| conv_case(gpu, dtype, &c, &epi, seed).map(|(s, _)| s))));
}

fn conv_case(gpu: &Gpu, dtype: DType, c: &Conv2d, epi: &Epilogue, seed: u64) -> Result<(String, f64), Error> {
    match dtype {
        DType::F32 => conv_run::<f32>(gpu, dtype, c, epi, seed),
        _ => conv_run::<u16>(gpu, dtype, c, epi, seed),
    }
}

/// Inputs of one conv case, already rounded to what the GPU sees.
struct ConvData {
    x: Vec<f32>,
    w_oihw: Vec<f32>,
    bias: Option<Vec<f32>>,
    scale: Option<Vec<f32>>,
    shift: Option<Vec<f32>>,
    residual: Option<Vec<f32>>,
}

fn conv_data(dtype: DType, c: &Conv2d, epi: &Epilogue, seed: u64) -> ConvData {
    let round = |v: Vec<f32>| reference::round_through(dtype, &v);
    ConvData {
        x: round(random_uniform(c.in_len(), sub_seed(seed, 0))),
        w_oihw: round(random_uniform(c.weight_len(), sub_seed(seed, 1))),
        bias: epi.bias.then(|| random_uniform(c.c_out, sub_seed(seed, 2))),
        scale: epi.scale_shift.then(|| random_uniform_in(c.c_out, sub_seed(seed, 3), 0.5, 1.5)),
        shift: epi.scale_shift.then(|| random_uniform(c.c_out, sub_seed(seed, 4))),
        residual: epi.residual.then(|| round(random_uniform(c.out_len(), sub_seed(seed, 5)))),
    }
}

/// Uploads, launches, downloads: the output as f32, and what was launched.
fn conv_launch<T: Elem>(
    gpu: &Gpu,
    dtype: DType,
    c: &Conv2d,
    act: Act,
    d: &ConvData,
) -> Result<(Vec<f32>, Launched), Error> {
    let w_ohwi = reference::oihw_to_ohwi(&d.w_oihw, c.weight_dims()).map_err(bad)?;
    let up_f32 = |v: &Option<Vec<f32>>| v.as_ref().map(|v| upload(gpu, v)).transpose();
    let xd = upload(gpu, &T::encode(dtype, &d.x))?;
    let wd = upload(gpu, &T::encode(dtype, &w_ohwi))?;
    let (bd, sd, hd) = (up_f32(&d.bias)?, up_f32(&d.scale)?, up_f32(&d.shift)?);
    let rd = d.residual.as_ref().map(|r| upload(gpu, &T::encode(dtype, r))).transpose()?;
    let mut yd: CudaSlice<T> = upload(gpu, &vec![T::poison(dtype); c.out_len()])?;
    let ops = ConvOperands {
        x: xd.as_view(),
        w: wd.as_view(),
        bias: bd.as_ref().map(|b| b.as_view()),
        scale: sd.as_ref().map(|b| b.as_view()),
        shift: hd.as_ref().map(|b| b.as_view()),
        residual: rd.as_ref().map(|b| b.as_view()),
    };
    let launched = tc::conv2d::<T>(gpu, dtype, c, act, &ops, &mut yd.as_view_mut())?;
    let out = download(gpu, &yd)?;
    Ok((T::decode(dtype, &out), launched))
}

fn conv_reference(c: &Conv2d, d: &ConvData, act: Act) -> Result<Vec<f64>, Error> {
    let args = EpilogueArgs {
        bias: d.bias.as_deref(),
        scale: d.scale.as_deref(),
        shift: d.shift.as_deref(),
        residual: d.residual.as_deref(),
        act,
    };
    reference::conv2d(c, Layout::Nhwc, &d.x, &d.w_oihw, &args).map_err(bad)
}

fn conv_run<T: Elem>(gpu: &Gpu, dtype: DType, c: &Conv2d, epi: &Epilogue, seed: u64) -> Result<(String, f64), Error> {
    let d = conv_data(dtype, c, epi, seed);
    let (out, l) = conv_launch::<T>(gpu, dtype, c, epi.act, &d)?;
    let want = conv_reference(c, &d, epi.act)?;
    let rel = compare(&out, &want, tol(dtype)).map_err(Error::Invalid)?;
    Ok((format!("rel_l2={rel:.1e} {} grid={}", l.symbol, l.cfg.grid_dim.0), rel))
}

fn epilogue_combos(gpu: &Gpu, dtype: DType, seed: u64) -> Result<String, Error> {
    let c = Conv2d::new(2, 16, 8, 8, 24, 3, 3).with_pad(1, 1);
    let mut worst = 0f64;
    let mut n = 0;
    for bits in 0..8u32 {
        for act in [Act::None, Act::Relu, Act::RELU6, Act::Sigmoid, Act::Tanh] {
            let epi = Epilogue { bias: bits & 1 != 0, scale_shift: bits & 2 != 0, act, residual: bits & 4 != 0 };
            let (_, rel) = conv_case(gpu, dtype, &c, &epi, sub_seed(seed, n))
                .map_err(|e| Error::Invalid(format!("{}: {e}", epi_name(&epi))))?;
            worst = worst.max(rel);
            n += 1;
        }
    }
    Ok(format!("{n} combinations, worst rel_l2={worst:.1e}"))
}

/// Which GEMM launcher a case goes through.
#[derive(Clone, Copy, Debug, PartialEq)]
enum GemmPath {
    /// `tc::gemm`.
    Plain,
    /// `tc::gemm_splitk` with this many (requested) splits.
    SplitK(usize),
    /// `tc::gemm_auto` with a workspace sized by the launch rule.
    Auto,
}

fn push_gemm(v: &mut Vec<(String, CaseFn)>, dtype: DType, label: &str, g: GemmTc, bias: bool, path: GemmPath) {
    let kind = match path {
        GemmPath::Plain => String::new(),
        GemmPath::SplitK(s) => format!("splitk{s} "),
        GemmPath::Auto => "auto ".into(),
    };
    v.push((
        format!("tensorcore/gemm {} {kind}{label}{}", kernel_name(dtype), if bias { " +bias" } else { "" }),
        Box::new(move |gpu, seed| gemm_case(gpu, dtype, &g, bias, path, seed)),
    ));
}

fn gemm_case(gpu: &Gpu, dtype: DType, g: &GemmTc, bias: bool, path: GemmPath, seed: u64) -> Result<String, Error> {
    match dtype {
        DType::F32 => gemm_run::<f32>(gpu, dtype, g, bias, path, seed),
        _ => gemm_run::<u16>(gpu, dtype, g, bias, path, seed),
    }
}

fn gemm_run<T: Elem>(
    gpu: &Gpu,
    dtype: DType,
    g: &GemmTc,
    with_bias: bool,
    path: GemmPath,
    seed: u64,
) -> Result<String, Error> {
    let (la, lb, lc) = g.lens();
    let round = |v: Vec<f32>| reference::round_through(dtype, &v);
    let a = round(random_uniform(la, sub_seed(seed, 0)));
    let b = round(random_uniform(lb, sub_seed(seed, 1)));
    let bias = with_bias.then(|| random_uniform(g.n, sub_seed(seed, 2)));
    // With beta = 0, C starts poisoned; otherwise with data (its padding columns stay
    // untouched either way).
    let c0: Vec<T> = if g.beta != 0.0 {
        T::encode(dtype, &round(random_uniform(lc, sub_seed(seed, 3))))
    } else {
        vec![T::poison(dtype); lc]
    };
    let c0_f32 = T::decode(dtype, &c0);
    let (ad, bd) = (upload(gpu, &T::encode(dtype, &a))?, upload(gpu, &T::encode(dtype, &b))?);
    let biasd = bias.as_ref().map(|v| upload(gpu, v)).transpose()?;
    let mut cd = upload(gpu, &c0)?;
    let biasv = biasd.as_ref().map(|b| b.as_view());
    let (av, bv) = (ad.as_view(), bd.as_view());
    // The workspace starts poisoned: the first pass must write every partial it sums.
    let splits = match path {
        GemmPath::Plain => 0,
        GemmPath::SplitK(s) => s,
        GemmPath::Auto => tc::splitk_splits(dtype, g, gpu.info.sm_count),
    };
    let mut ws = super::buf::poisoned_f32(gpu, tc::splitk_workspace_len(dtype, g, splits.max(1)))?;
    let l = match path {
        GemmPath::Plain => tc::gemm::<T>(gpu, dtype, g, &av, &bv, biasv.as_ref(), &mut cd.as_view_mut())?,
        GemmPath::SplitK(s) => tc::gemm_splitk::<T>(
            gpu,
            dtype,
            g,
            s,
            &av,
            &bv,
            biasv.as_ref(),
            &mut ws.as_view_mut(),
            &mut cd.as_view_mut(),
        )?,
        GemmPath::Auto => tc::gemm_auto::<T>(
            gpu,
            dtype,
            g,
            &av,
            &bv,
            biasv.as_ref(),
            Some(&mut ws.as_view_mut()),
            &mut cd.as_view_mut(),
        )?,
    };
    let out_raw = download(gpu, &cd)?;
    let out_all = T::decode(dtype, &out_raw);

    let mut out = Vec::with_capacity(g.m * g.n);
    let mut want = Vec::with_capacity(g.m * g.n);
    for i in 0..g.m {
        for j in 0..g.ldc {
            let idx = i * g.ldc + j;
            if idx >= lc {
                break;
            }
            if j >= g.n {
                // Padding between rows: never written.
                if out_all[idx].to_bits() != c0_f32[idx].to_bits() {
                    return Err(Error::Invalid(format!("C padding element ({i}, {j}) was written")));
                }
                continue;
            }
            let dot: f64 = (0..g.k).map(|kk| a[i * g.lda + kk] as f64 * b[j * g.ldb + kk] as f64).sum();
            let mut v = g.alpha as f64 * dot;
            if g.beta != 0.0 {
                v += g.beta as f64 * c0_f32[idx] as f64;
            }
            if let Some(bias) = &bias {
                v += bias[j] as f64;
            }
            want.push(g.act.apply(v));
            out.push(out_all[idx]);
        }
    }
    let rel = compare(&out, &want, tol(dtype)).map_err(Error::Invalid)?;
    Ok(format!("rel_l2={rel:.1e} {} grid={}x{}", l.symbol, l.cfg.grid_dim.0, l.cfg.grid_dim.1))
}

/// A batch-64 layer: full finiteness check, 512 sampled elements against an f64 dot
/// product, and the median time of repeated launches.
fn perf_conv(gpu: &Gpu, dtype: DType, c: &Conv2d, seed: u64) -> Result<String, Error> {
    match dtype {
        DType::F32 => perf_run::<f32>(gpu, dtype, c, seed),
        _ => perf_run::<u16>(gpu, dtype, c, seed),
    }
}

fn perf_run<T: Elem>(gpu: &Gpu, dtype: DType, c: &Conv2d, seed: u64) -> Result<String, Error> {
    let epi = BN_RELU;
    let d = conv_data(dtype, c, &epi, seed);
    let w_ohwi = reference::oihw_to_ohwi(&d.w_oihw, c.weight_dims()).map_err(bad)?;
    let xd = upload(gpu, &T::encode(dtype, &d.x))?;
    let wd = upload(gpu, &T::encode(dtype, &w_ohwi))?;
    let sd = upload(gpu, d.scale.as_ref().expect("bn"))?;
    let hd = upload(gpu, d.shift.as_ref().expect("bn"))?;
    let mut yd: CudaSlice<T> = upload(gpu, &vec![T::poison(dtype); c.out_len()])?;
    let ops = ConvOperands {
        x: xd.as_view(),
        w: wd.as_view(),
        bias: None,
        scale: Some(sd.as_view()),
        shift: Some(hd.as_view()),
        residual: None,
    };
    let l = tc::conv2d::<T>(gpu, dtype, c, epi.act, &ops, &mut yd.as_view_mut())?;
    let out = T::decode(dtype, &download(gpu, &yd)?);
    if let Some(i) = out.iter().position(|v| !v.is_finite()) {
        return Err(Error::Invalid(format!("element {i} is {} (poison or overflow)", out[i])));
    }
    // Sampled reference: NHWC output index -> (n, oy, ox, oc).
    let (oh, ow) = c.out_hw();
    let (scale, shift) = (d.scale.as_ref().expect("bn"), d.shift.as_ref().expect("bn"));
    let mut rng_state = seed | 1;
    let mut got = Vec::new();
    let mut want = Vec::new();
    for _ in 0..512 {
        rng_state = rng_state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let idx = (rng_state >> 17) as usize % out.len();
        let oc = idx % c.c_out;
        let pix = idx / c.c_out;
        let (n, oy, ox) = (pix / (oh * ow), (pix / ow) % oh, pix % ow);
        let mut acc = 0f64;
        for r in 0..c.kh {
            for s in 0..c.kw {
                let iy = (oy * c.stride_h + r * c.dil_h) as isize - c.pad_t as isize;
                let ix = (ox * c.stride_w + s * c.dil_w) as isize - c.pad_l as isize;
                if iy < 0 || ix < 0 || iy >= c.h as isize || ix >= c.w as isize {
                    continue;
                }
                for ci in 0..c.c_in {
                    let xv = d.x[((n * c.h + iy as usize) * c.w + ix as usize) * c.c_in + ci];
                    let wv = d.w_oihw[((oc * c.c_in + ci) * c.kh + r) * c.kw + s];
                    acc += xv as f64 * wv as f64;
                }
            }
        }
        want.push(epi.act.apply(acc * scale[oc] as f64 + shift[oc] as f64));
        got.push(out[idx]);
    }
    let rel = compare(&got, &want, tol(dtype)).map_err(Error::Invalid)?;
    // Back-to-back launches between two events (the host's per-launch work overlaps the
    // GPU's), best of 5 batches of 20.
    let ev = || {
        gpu.ctx
            .new_event(Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(Error::driver("creating an event"))
    };
    let (start, stop) = (ev()?, ev()?);
    let mut launch = || tc::conv2d::<T>(gpu, dtype, c, epi.act, &ops, &mut yd.as_view_mut()).map(|_| ());
    for _ in 0..3 {
        launch()?;
    }
    let mut best_us = f64::INFINITY;
    for _ in 0..5 {
        start.record(&gpu.stream).map_err(Error::driver("recording an event"))?;
        for _ in 0..20 {
            launch()?;
        }
        stop.record(&gpu.stream).map_err(Error::driver("recording an event"))?;
        stop.synchronize().map_err(Error::driver("running the timed kernels"))?;
        let ms = start.elapsed_ms(&stop).map_err(Error::driver("reading an event"))? as f64;
        best_us = best_us.min(ms * 1e3 / 20.0);
    }
    let tflops = c.flops() as f64 / (best_us * 1e-6) / 1e12;
    Ok(format!("sampled rel_l2={rel:.1e} {} grid={} {best_us:.1} us = {tflops:.1} TFLOP/s", l.symbol, l.cfg.grid_dim.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names_are_unique_and_cover_every_type() {
        let mut v = Vec::new();
        cases(&mut v);
        let names: Vec<&str> = v.iter().map(|(n, _)| n.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate case names");
        for t in ["f16", "bf16", "tf32"] {
            assert!(names.iter().any(|n| n.starts_with(&format!("tensorcore/conv {t} real resnet50/conv1"))));
            assert!(names.iter().any(|n| n.starts_with(&format!("tensorcore/gemm {t} fc"))));
        }
        assert_eq!(names.iter().filter(|n| n.starts_with("tensorcore/perf f16")).count(), 4);
        for s in 1..=16 {
            assert!(names.iter().any(|n| n.starts_with(&format!("tensorcore/gemm f16 splitk{s} "))), "{s}");
        }
        assert!(names.iter().any(|n| n.starts_with("tensorcore/gemm f16 auto fc vgg16.0 64x4096x25088")));
    }

    #[test]
    fn poison_is_nan_and_round_trips() {
        for dt in [DType::F16, DType::BF16] {
            let p = <u16 as Elem>::poison(dt);
            assert!(<u16 as Elem>::decode(dt, &[p])[0].is_nan());
            let x = [0.5f32, -1.25, 3.0];
            assert_eq!(<u16 as Elem>::decode(dt, &<u16 as Elem>::encode(dt, &x)), x.to_vec());
        }
        assert_eq!(epi_name(&BN_RES_RELU), "bn+res+relu");
        assert_eq!(epi_name(&Epilogue::NONE), "plain");
    }
}
