//! Max / average / global-average pooling.

use super::layout::to_layout;
use crate::ops::{check_len, Layout, OpError, Pool2d, PoolKind};

/// 2-D pooling, following PyTorch's CPU kernels (which ONNX MaxPool/AveragePool match
/// for the attributes modelled here); output size per [`Pool2d::out_hw`].
///
/// For output `(oy, ox)` the window starts at input row `oy*sh - pad_t`, column
/// `ox*sw - pad_l`; tap `(ky, kx)` reads input `(start_y + ky*dh, start_x + kx*dw)`.
/// * **Max**: maximum of the taps inside the input (padding never wins; NaN propagates,
///   as in PyTorch). A window whose dilated taps all miss the input gives -inf.
/// * **Avg**: sum of the taps inside the input divided by
///   - `count_include_pad = false`: the number of those taps;
///   - `count_include_pad = true`: the window size clipped to the *padded* input, i.e.
///     `(min(start_y + kh, h + pad_b) - start_y) * (same for x)`: padding counts, but the
///     part of a ceil-mode window hanging past the bottom/right padding does not
///     (PyTorch's `pool_size`).
/// * **GlobalAvg**: mean of each H x W plane (output N x C x 1 x 1).
///
/// `x` and the result use `layout`.
pub fn pool2d(p: &Pool2d, layout: Layout, x: &[f32]) -> Result<Vec<f64>, OpError> {
    p.validate()?;
    check_len("pool", "input", x.len(), p.in_len())?;
    let x = to_layout(x, p.in_dims(), layout, Layout::Nchw)?;
    let y = match p.kind {
        PoolKind::GlobalAvg => x
            .chunks_exact(p.h * p.w)
            .map(|plane| plane.iter().map(|&v| v as f64).sum::<f64>() / (p.h * p.w) as f64)
            .collect(),
        PoolKind::Max | PoolKind::Avg => window_pool(p, &x),
    };
    to_layout(&y, p.out_dims(), Layout::Nchw, layout)
}

fn window_pool(p: &Pool2d, x: &[f32]) -> Vec<f64> {
    let (oh, ow) = p.out_hw();
    let (h, w) = (p.h as isize, p.w as isize);
    let mut y = Vec::with_capacity(p.out_len());
    for plane in x.chunks_exact(p.h * p.w) {
        for oy in 0..oh {
            let y0 = (oy * p.stride_h) as isize - p.pad_t as isize;
            for ox in 0..ow {
                let x0 = (ox * p.stride_w) as isize - p.pad_l as isize;
                let mut max = f64::NEG_INFINITY;
                let (mut sum, mut count) = (0.0f64, 0usize);
                for ky in 0..p.kh {
                    let iy = y0 + (ky * p.dil_h) as isize;
                    if !(0..h).contains(&iy) {
                        continue;
                    }
                    for kx in 0..p.kw {
                        let ix = x0 + (kx * p.dil_w) as isize;
                        if !(0..w).contains(&ix) {
                            continue;
                        }
                        let v = plane[(iy * w + ix) as usize] as f64;
                        if v > max || v.is_nan() {
                            max = v;
                        }
                        sum += v;
                        count += 1;
                    }
                }
                y.push(match p.kind {
                    PoolKind::Max => max,
                    _ => {
                        let divisor = if p.count_include_pad {
                            // Avg has no dilation, so the window spans kh x kw.
                            let y1 = (y0 + p.kh as isize).min(h + p.pad_b as isize);
                            let x1 = (x0 + p.kw as isize).min(w + p.pad_r as isize);
                            ((y1 - y0) * (x1 - x0)) as usize
                        } else {
                            count
                        };
                        sum / divisor as f64
                    }
                });
            }
        }
    }
    y
}
