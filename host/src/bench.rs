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

/// How long the timing gate (`spin_ns`) holds the stream before each timed run: well
/// above the host's time to record an event and enqueue one launch.
const GATE_NS: u64 = 50_000;

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
        // The GPU spins while the host enqueues the start event and the launch, so the
        // interval holds the launch alone, not the host's enqueue latency (~5-7 µs).
        crate::launch::memory::spin(gpu, GATE_NS)?;
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

/// One layer configuration to benchmark, as `cnnergy bench-layers` and the PyTorch
/// script (`bench/torch_layers.py`) both read it: the same JSON drives both sides.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerCase {
    /// `model/bBATCH/layer`, unique.
    pub id: String,
    pub model: String,
    pub batch: usize,
    /// The first layer (by graph order) with this configuration.
    pub layer: String,
    /// How many layers of the model share it.
    pub count: usize,
    /// conv | linear | maxpool | avgpool | global_avg | relu | relu6 | batchnorm | add | softmax | to_nhwc_f16
    pub kind: String,
    pub input: [usize; 4],
    pub output: [usize; 4],
    /// Convolution / pooling geometry (zero where it does not apply).
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    /// top, left, bottom, right
    pub pad: [usize; 4],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub bias: bool,
    pub ceil_mode: bool,
    pub flops: u64,
    /// Minimal traffic in bytes at f32.
    pub bytes_f32: u64,
}

/// The distinct layer configurations of `models` (built-in names) at each batch size,
/// from their unfused graphs, plus the classifier softmax and the input conversion to
/// NHWC f16 that the tensor-core path needs.
pub fn layer_cases(models: &[&str], batches: &[usize]) -> Result<Vec<LayerCase>> {
    use crate::graph::Op;
    use crate::ops::{Act, DType, PoolKind};
    let mut out: Vec<LayerCase> = Vec::new();
    for &model in models {
        for &batch in batches {
            let g = crate::models::build(model, batch)
                .ok_or_else(|| Error::Invalid(format!("unknown model `{model}`")))?
                .map_err(|e| Error::Invalid(e.to_string()))?;
            let start = out.len();
            for node in &g.nodes {
                let input = g.tensors[node.inputs[0]].dims;
                let output = g.tensors[node.output].dims;
                let mut c = LayerCase {
                    id: format!("{model}/b{batch}/{}", node.name),
                    model: model.to_string(),
                    batch,
                    layer: node.name.clone(),
                    count: 1,
                    kind: String::new(),
                    input,
                    output,
                    kh: 0,
                    kw: 0,
                    stride: [0; 2],
                    pad: [0; 4],
                    dilation: [0; 2],
                    groups: 0,
                    bias: false,
                    ceil_mode: false,
                    flops: g.node_flops(node),
                    bytes_f32: g.node_bytes(node, DType::F32),
                };
                match &node.op {
                    Op::Conv { conv, epi } => {
                        c.kind = "conv".into();
                        (c.kh, c.kw, c.groups, c.bias) = (conv.kh, conv.kw, conv.groups, epi.bias);
                        c.stride = [conv.stride_h, conv.stride_w];
                        c.pad = [conv.pad_t, conv.pad_l, conv.pad_b, conv.pad_r];
                        c.dilation = [conv.dil_h, conv.dil_w];
                    }
                    Op::Linear { bias, .. } => {
                        c.kind = "linear".into();
                        c.bias = *bias;
                    }
                    Op::Pool(p) => {
                        c.kind = match p.kind {
                            PoolKind::Max => "maxpool",
                            PoolKind::Avg => "avgpool",
                            PoolKind::GlobalAvg => "global_avg",
                        }
                        .into();
                        (c.kh, c.kw, c.ceil_mode) = (p.kh, p.kw, p.ceil_mode);
                        c.stride = [p.stride_h, p.stride_w];
                        c.pad = [p.pad_t, p.pad_l, p.pad_b, p.pad_r];
                        c.dilation = [p.dil_h, p.dil_w];
                    }
                    Op::Act(Act::Relu) => c.kind = "relu".into(),
                    Op::Act(Act::Clip { .. }) => c.kind = "relu6".into(),
                    Op::BatchNorm(_) => c.kind = "batchnorm".into(),
                    Op::Add { .. } => c.kind = "add".into(),
                    _ => continue,
                }
                push_case(&mut out, start, c);
            }
            let base = out[start].clone();
            let classes = g.tensors[g.output].dims;
            let len = (classes[0] * classes[1]) as u64;
            push_case(
                &mut out,
                start,
                LayerCase {
                    id: format!("{model}/b{batch}/softmax"),
                    layer: "softmax".into(),
                    kind: "softmax".into(),
                    input: classes,
                    output: classes,
                    flops: 5 * len,
                    bytes_f32: 8 * len,
                    ..base.clone()
                },
            );
            let x = g.tensors[g.input].dims;
            let len = x.iter().product::<usize>() as u64;
            push_case(
                &mut out,
                start,
                LayerCase {
                    id: format!("{model}/b{batch}/input_to_nhwc_f16"),
                    layer: "input".into(),
                    kind: "to_nhwc_f16".into(),
                    input: x,
                    output: [x[0], x[2], x[3], x[1]],
                    flops: 0,
                    bytes_f32: 6 * len,
                    ..base.clone()
                },
            );
        }
    }
    Ok(out)
}

/// Appends `c` to `out`, or counts it against an equal configuration of the same model
/// and batch (those from index `start` on).
fn push_case(out: &mut Vec<LayerCase>, start: usize, c: LayerCase) {
    let same = |o: &LayerCase| LayerCase { id: String::new(), layer: String::new(), count: 0, ..o.clone() };
    let key = same(&c);
    if let Some(o) = out[start..].iter_mut().find(|o| same(o) == key) {
        o.count += 1;
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod case_tests {
    #[test]
    fn resnet50_cases_cover_every_conv_once_by_count() {
        let cases = super::layer_cases(&["resnet50"], &[1]).unwrap();
        let convs: usize = cases.iter().filter(|c| c.kind == "conv").map(|c| c.count).sum();
        assert_eq!(convs, 53);
        // Distinct conv configurations are far fewer than convs.
        assert!(cases.iter().filter(|c| c.kind == "conv").count() < 30);
        let ids: std::collections::HashSet<_> = cases.iter().map(|c| &c.id).collect();
        assert_eq!(ids.len(), cases.len(), "ids are unique");
        assert!(cases.iter().any(|c| c.kind == "softmax" && c.input == [1, 1000, 1, 1]));
        assert!(cases.iter().any(|c| c.kind == "global_avg" && c.input == [1, 2048, 7, 7]));
    }
}

/// One timed (layer, precision, variant).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BenchResult {
    pub id: String,
    pub kind: String,
    pub count: usize,
    /// f32 | tf32_nhwc | f16_nhwc | bf16_nhwc
    pub precision: String,
    pub variant: String,
    pub kernel: String,
    pub median_us: f64,
    pub min_us: f64,
    pub runs: usize,
    pub tflops: f64,
    /// Minimal bytes moved at this precision over the median time.
    pub gbs: f64,
}

/// Device buffers of random values (never zeros), filled from one random block so large
/// tensors cost no host time: copies of a 4 M-element random block.
pub struct RandomSource {
    block_f32: cudarc::driver::CudaSlice<f32>,
    block_u16: cudarc::driver::CudaSlice<u16>,
}

const BLOCK: usize = 1 << 22;

impl RandomSource {
    pub fn new(gpu: &Gpu, seed: u64) -> Result<Self> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let host: Vec<f32> = (0..BLOCK).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let halves: Vec<u16> = host.iter().map(|&v| half::f16::from_f32(v).to_bits()).collect();
        let s = &gpu.stream;
        Ok(RandomSource {
            block_f32: s.clone_htod(&host).map_err(Error::driver("uploading random data"))?,
            block_u16: s.clone_htod(&halves).map_err(Error::driver("uploading random data"))?,
        })
    }

    fn fill<T: cudarc::driver::DeviceRepr>(
        gpu: &Gpu,
        block: &cudarc::driver::CudaSlice<T>,
        n: usize,
    ) -> Result<cudarc::driver::CudaSlice<T>> {
        // SAFETY: every element is written by the copies below before any use.
        let mut d =
            unsafe { gpu.stream.alloc::<T>(n.max(1)) }.map_err(Error::driver("allocating a benchmark buffer"))?;
        let mut off = 0;
        while off < n {
            let len = (n - off).min(BLOCK);
            gpu.stream
                .memcpy_dtod(&block.slice(0..len), &mut d.slice_mut(off..off + len))
                .map_err(Error::driver("filling a benchmark buffer"))?;
            off += len;
        }
        Ok(d)
    }

    pub fn f32(&self, gpu: &Gpu, n: usize) -> Result<cudarc::driver::CudaSlice<f32>> {
        Self::fill(gpu, &self.block_f32, n)
    }

    /// Random f16 bit patterns (also valid, if differently distributed, as bf16).
    pub fn u16(&self, gpu: &Gpu, n: usize) -> Result<cudarc::driver::CudaSlice<u16>> {
        Self::fill(gpu, &self.block_u16, n)
    }
}

/// How many input sets to rotate among so one pass exceeds the L2 cache (50-60 MB on
/// H100/H200) and repeats are not served from it.
pub fn rotation(bytes: usize) -> usize {
    (160_000_000 / bytes.max(1) + 1).clamp(1, 8)
}

/// Times every applicable kernel variant and precision on one layer case.
pub fn run_case(gpu: &Gpu, rnd: &RandomSource, case: &LayerCase) -> Result<Vec<BenchResult>> {
    use crate::launch::{conv, gemm, memory, tensorcore as tc};
    use crate::ops::{Act, Activation, Add, BatchNorm, Conv2d, DType, Epilogue, Gemm, Pool2d, PoolKind, Softmax};
    let [n, c, h, w] = case.input;
    let in_len = n * c * h * w;
    let out_len: usize = case.output.iter().product();
    let mut out = Vec::new();
    let mut record = |precision: &str, variant: &str, kernel: &str, t: Timing, bytes: u64| {
        out.push(BenchResult {
            id: case.id.clone(),
            kind: case.kind.clone(),
            count: case.count,
            precision: precision.into(),
            variant: variant.into(),
            kernel: kernel.into(),
            median_us: t.median_us,
            min_us: t.min_us,
            runs: t.runs,
            tflops: case.flops as f64 / (t.median_us * 1e-6) / 1e12,
            gbs: bytes as f64 / (t.median_us * 1e-6) / 1e9,
        });
    };
    let bytes_at = |size: u64| case.bytes_f32 / 4 * size;
    let rot = rotation(in_len * 4);
    let xs: Vec<_> = (0..rot).map(|_| rnd.f32(gpu, in_len)).collect::<Result<_>>()?;
    let (warm, runs, ms) = (3, 20, 30.0);
    match case.kind.as_str() {
        "conv" => {
            let p = Conv2d::new(n, c, h, w, case.output[1], case.kh, case.kw)
                .with_stride(case.stride[0], case.stride[1])
                .with_pads(case.pad[0], case.pad[1], case.pad[2], case.pad[3])
                .with_dilation(case.dilation[0], case.dilation[1])
                .with_groups(case.groups);
            let epi = Epilogue { bias: case.bias, ..Epilogue::NONE };
            let wt = rnd.f32(gpu, p.weight_len())?;
            let bias = rnd.f32(gpu, p.c_out)?;
            let mut y = rnd.f32(gpu, out_len)?;
            for spec in conv::KERNELS {
                // The direct kernel is the readable reference; on big layers it only burns time.
                if conv::check_supported(spec, &p).is_err() || (spec.variant == "direct" && case.flops > 20_000_000_000)
                {
                    continue;
                }
                let t = time(gpu, warm, runs, ms, |i| {
                    let ops = conv::ConvOperands {
                        x: xs[i % rot].as_view(),
                        w: wt.as_view(),
                        bias: case.bias.then(|| bias.as_view()),
                        scale: None,
                        shift: None,
                        residual: None,
                    };
                    conv::launch(gpu, spec, &p, &epi, &ops, &mut y.as_view_mut()).map(|_| ())
                })?;
                record("f32", spec.variant, spec.symbol, t, bytes_at(4));
            }
            if p.groups == 1 {
                let xh: Vec<_> = (0..rot).map(|_| rnd.u16(gpu, in_len)).collect::<Result<_>>()?;
                let wh = rnd.u16(gpu, p.weight_len())?;
                let mut yh = rnd.u16(gpu, out_len)?;
                for (dtype, prec) in [(DType::F16, "f16_nhwc"), (DType::BF16, "bf16_nhwc")] {
                    let mut sym = "";
                    let t = time(gpu, warm, runs, ms, |i| {
                        let ops = tc::ConvOperands {
                            x: xh[i % rot].as_view(),
                            w: wh.as_view(),
                            bias: case.bias.then(|| bias.as_view()),
                            scale: None,
                            shift: None,
                            residual: None,
                        };
                        sym = tc::conv2d(gpu, dtype, &p, Act::None, &ops, &mut yh.as_view_mut())?.symbol;
                        Ok(())
                    });
                    if let Ok(t) = t {
                        record(prec, "implicit_gemm_tc", sym, t, bytes_at(2));
                    }
                }
                let mut sym = "";
                let t = time(gpu, warm, runs, ms, |i| {
                    let ops = tc::ConvOperands {
                        x: xs[i % rot].as_view(),
                        w: wt.as_view(),
                        bias: case.bias.then(|| bias.as_view()),
                        scale: None,
                        shift: None,
                        residual: None,
                    };
                    sym = tc::conv2d(gpu, DType::F32, &p, Act::None, &ops, &mut y.as_view_mut())?.symbol;
                    Ok(())
                });
                if let Ok(t) = t {
                    record("tf32_nhwc", "implicit_gemm_tc", sym, t, bytes_at(4));
                }
            }
            // Depthwise: the NHWC f16/bf16 kernel (tap-major weights; random bits suffice).
            if p.groups > 1 && crate::launch::depthwise::check_supported(&p).is_ok() {
                let xh: Vec<_> = (0..rot).map(|_| rnd.u16(gpu, in_len)).collect::<Result<_>>()?;
                let wh = rnd.u16(gpu, p.weight_len())?;
                let mut yh = rnd.u16(gpu, out_len)?;
                for (dtype, prec) in [(DType::F16, "f16_nhwc"), (DType::BF16, "bf16_nhwc")] {
                    let mut sym = "";
                    let t = time(gpu, warm, runs, ms, |i| {
                        let ops = tc::ConvOperands {
                            x: xh[i % rot].as_view(),
                            w: wh.as_view(),
                            bias: case.bias.then(|| bias.as_view()),
                            scale: None,
                            shift: None,
                            residual: None,
                        };
                        sym = crate::launch::depthwise::conv2d(gpu, dtype, &p, Act::None, &ops, &mut yh.as_view_mut())?
                            .symbol;
                        Ok(())
                    });
                    if let Ok(t) = t {
                        record(prec, "depthwise_nhwc", sym, t, bytes_at(2));
                    }
                }
            }
        }
        "linear" => {
            let g = Gemm::linear(n, c, case.output[1], case.bias);
            let wt = rnd.f32(gpu, g.b_len())?;
            let bias = rnd.f32(gpu, g.n)?;
            let mut y = rnd.f32(gpu, g.out_len())?;
            for spec in gemm::KERNELS {
                if gemm::check_supported(spec, &g).is_err() {
                    continue;
                }
                let t = time(gpu, warm, runs, ms, |i| {
                    let ops = gemm::GemmOperands {
                        a: xs[i % rot].as_view(),
                        b: wt.as_view(),
                        bias: case.bias.then(|| bias.as_view()),
                    };
                    gemm::launch(gpu, spec, &g, Act::None, &ops, &mut y.as_view_mut()).map(|_| ())
                })?;
                record("f32", spec.variant, spec.symbol, t, bytes_at(4));
            }
            if let Ok(gt) = tc::GemmTc::from_gemm(&g) {
                let xh: Vec<_> = (0..rot).map(|_| rnd.u16(gpu, in_len)).collect::<Result<_>>()?;
                let wh = rnd.u16(gpu, g.b_len())?;
                let mut yh = rnd.u16(gpu, g.out_len())?;
                let mut sym = "";
                let t = time(gpu, warm, runs, ms, |i| {
                    let b = bias.as_view();
                    sym = tc::gemm(
                        gpu,
                        DType::F16,
                        &gt,
                        &xh[i % rot].as_view(),
                        &wh.as_view(),
                        case.bias.then_some(&b),
                        &mut yh.as_view_mut(),
                    )?
                    .symbol;
                    Ok(())
                });
                if let Ok(t) = t {
                    record("f16_nhwc", "gemm_tc", sym, t, bytes_at(2));
                }
                // Split-K with the launch rule's split count (when it splits at all).
                let splits = tc::splitk_splits(DType::F16, &gt, gpu.info.sm_count);
                if splits >= 2 {
                    let mut ws = gpu
                        .stream
                        .alloc_zeros::<f32>(tc::splitk_workspace_len(DType::F16, &gt, splits))
                        .map_err(Error::driver("allocating the split-K workspace"))?;
                    let t = time(gpu, warm, runs, ms, |i| {
                        let b = bias.as_view();
                        sym = tc::gemm_splitk(
                            gpu,
                            DType::F16,
                            &gt,
                            splits,
                            &xh[i % rot].as_view(),
                            &wh.as_view(),
                            case.bias.then_some(&b),
                            &mut ws.as_view_mut(),
                            &mut yh.as_view_mut(),
                        )?
                        .symbol;
                        Ok(())
                    });
                    if let Ok(t) = t {
                        record("f16_nhwc", &format!("gemm_tc_splitk{splits}"), sym, t, bytes_at(2));
                    }
                }
                // Small batch: the weight-streaming kernel.
                if crate::launch::smallm::applies(DType::F16, &gt) {
                    let t = time(gpu, warm, runs, ms, |i| {
                        let b = bias.as_view();
                        sym = crate::launch::smallm::gemm_smallm(
                            gpu,
                            DType::F16,
                            &gt,
                            &xh[i % rot].as_view(),
                            &wh.as_view(),
                            case.bias.then_some(&b),
                            &mut yh.as_view_mut(),
                        )?
                        .symbol;
                        Ok(())
                    });
                    if let Ok(t) = t {
                        record("f16_nhwc", "gemm_smallm", sym, t, bytes_at(2));
                    }
                }
            }
        }
        "maxpool" | "avgpool" | "global_avg" => {
            let p = match case.kind.as_str() {
                "global_avg" => Pool2d::global_avg(n, c, h, w),
                "maxpool" => Pool2d::max(n, c, h, w, case.kh, case.kw),
                _ => Pool2d::avg(n, c, h, w, case.kh, case.kw, true),
            };
            let p = if p.kind == PoolKind::GlobalAvg {
                p
            } else {
                p.with_stride(case.stride[0], case.stride[1])
                    .with_pads(case.pad[0], case.pad[1], case.pad[2], case.pad[3])
                    .with_dilation(case.dilation[0], case.dilation[1])
                    .with_ceil_mode(case.ceil_mode)
            };
            let mut y = rnd.f32(gpu, out_len)?;
            let t = time(gpu, warm, runs, ms, |i| memory::pool2d_f32(gpu, &p, &xs[i % rot], &mut y))?;
            record("f32", case.kind.as_str(), "pool_*_f32_nchw", t, bytes_at(4));
            if c % 8 == 0 {
                let xh: Vec<_> = (0..rot).map(|_| rnd.u16(gpu, in_len)).collect::<Result<_>>()?;
                let mut yh = rnd.u16(gpu, out_len)?;
                let t = time(gpu, warm, runs, ms, |i| memory::pool2d_f16_nhwc(gpu, &p, &xh[i % rot], &mut yh))?;
                record("f16_nhwc", case.kind.as_str(), "pool_*_f16_nhwc", t, bytes_at(2));
            }
            if p.kind == PoolKind::GlobalAvg {
                // The dedicated NHWC reduction (any c).
                let xh: Vec<_> = (0..rot).map(|_| rnd.u16(gpu, in_len)).collect::<Result<_>>()?;
                let mut yh = rnd.u16(gpu, out_len)?;
                let t = time(gpu, warm, runs, ms, |i| {
                    memory::global_avg_pool_nhwc_half(gpu, DType::F16, &p, &xh[i % rot], &mut yh)
                })?;
                record("f16_nhwc", "global_avg_nhwc", "pool_global_avg_f16_nhwc", t, bytes_at(2));
            }
        }
        "relu" | "relu6" => {
            let act = if case.kind == "relu" { Act::Relu } else { Act::RELU6 };
            let op = Activation { len: in_len, act };
            let mut y = rnd.f32(gpu, in_len)?;
            let t = time(gpu, warm, runs, ms, |i| memory::activation_f32(gpu, &op, &xs[i % rot], &mut y))?;
            record("f32", "act", "eltwise_act_f32", t, bytes_at(4));
        }
        "add" => {
            let op = Add { len: in_len, act: Act::None };
            let bs: Vec<_> = (0..rot).map(|_| rnd.f32(gpu, in_len)).collect::<Result<_>>()?;
            let mut y = rnd.f32(gpu, in_len)?;
            let t = time(gpu, warm, runs, ms, |i| memory::add_f32(gpu, &op, &xs[i % rot], &bs[i % rot], &mut y))?;
            record("f32", "add", "eltwise_add_f32", t, bytes_at(4));
        }
        "batchnorm" => {
            let p = BatchNorm::new(n, c, h, w);
            let (scale, shift) = (rnd.f32(gpu, c)?, rnd.f32(gpu, c)?);
            let mut y = rnd.f32(gpu, in_len)?;
            let t = time(gpu, warm, runs, ms, |i| {
                memory::batch_norm_f32(gpu, &p, Act::None, &xs[i % rot], &scale, &shift, &mut y)
            })?;
            record("f32", "batchnorm", "channel_affine_f32_nchw", t, bytes_at(4));
            let t = time(gpu, warm, runs, ms, |i| {
                memory::batch_norm_f32_planes(gpu, &p, Act::None, &xs[i % rot], &scale, &shift, &mut y)
            })?;
            record("f32", "batchnorm_planes", "channel_affine_f32_nchw_planes", t, bytes_at(4));
        }
        "softmax" => {
            let p = Softmax::rows(n, c * h * w);
            let mut y = rnd.f32(gpu, in_len)?;
            let t = time(gpu, warm, runs, ms, |i| memory::softmax_f32(gpu, &p, &xs[i % rot], &mut y))?;
            record("f32", "softmax", "softmax_f32", t, bytes_at(4));
        }
        "to_nhwc_f16" => {
            let mut y = rnd.u16(gpu, in_len)?;
            let t = time(gpu, warm, runs, ms, |i| {
                memory::nchw_f32_to_nhwc_half(gpu, DType::F16, case.input, &xs[i % rot], &mut y)
            })?;
            record("f32", "convert", "convert_nchw_f32_to_nhwc_f16", t, case.bytes_f32);
            if memory::pix8_applies(case.input) {
                let t = time(gpu, warm, runs, ms, |i| {
                    memory::nchw_f32_to_nhwc_half_pix8(gpu, DType::F16, case.input, &xs[i % rot], &mut y)
                })?;
                record("f32", "convert_pix8", "convert_nchw_f32_to_nhwc_pix8_f16", t, case.bytes_f32);
            }
            if c < memory::SMALL_C {
                // Padded to 8 channels (what the f16 plan does for conv1): f32 in, 8 halves out per pixel.
                let mut y8 = rnd.u16(gpu, n * h * w * memory::SMALL_C)?;
                let t = time(gpu, warm, runs, ms, |i| {
                    memory::nchw_f32_to_nhwc_half_pad8(gpu, DType::F16, case.input, &xs[i % rot], &mut y8)
                })?;
                let bytes = (n * h * w * (c * 4 + memory::SMALL_C * 2)) as u64;
                record("f32", "convert_pad8", "convert_nchw_f32_to_nhwc_pad8_f16", t, bytes);
            }
        }
        _ => {}
    }
    Ok(out)
}
