//! Hand-computed cases and cross-checks for the CPU references. Every expected value is
//! worked out in the comments, not printed by the code under test.

use cnnergy_host::ops::{Act, BatchNorm, Conv2d, Gemm, GemmC, Layout, Lrn, Pool2d};
use cnnergy_host::reference::{
    batch_norm, conv2d, fold_batch_norm, gemm, lrn, nchw_to_nhwc, nhwc_to_nchw, ohwi_to_oihw, oihw_to_ohwi, pool2d,
    random_uniform, random_uniform_in, rel_l2, EpilogueArgs,
};

/// x = [[1,2,3],[4,5,6],[7,8,9]] as one 1x1x3x3 image.
const X3: [f32; 9] = [1., 2., 3., 4., 5., 6., 7., 8., 9.];
/// w = [[1,2],[3,4]] as a 1x1x2x2 filter.
const W2: [f32; 4] = [1., 2., 3., 4.];

fn conv(p: Conv2d, x: &[f32], w: &[f32]) -> Vec<f64> {
    conv2d(&p, Layout::Nchw, x, w, &EpilogueArgs::none()).unwrap()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "element {i}: got {g}, want {w}");
    }
}

#[test]
fn conv_single_channel_by_hand() {
    let base = Conv2d::new(1, 1, 3, 3, 1, 2, 2);
    // Stride 1, no pad: out(oy,ox) = 1*x[oy][ox] + 2*x[oy][ox+1] + 3*x[oy+1][ox] + 4*x[oy+1][ox+1]
    // (0,0) 1+4+12+20 = 37; (0,1) 2+6+15+24 = 47; (1,0) 4+10+21+32 = 67; (1,1) 5+12+24+36 = 77.
    assert_eq!(conv(base, &X3, &W2), vec![37., 47., 67., 77.]);
    // Stride 2: (3-2)/2+1 = 1 output, the (0,0) one.
    assert_eq!(conv(base.with_stride(2, 2), &X3, &W2), vec![37.]);
    // Pad 1: 4x4 outputs, out(oy,ox) = Σ w[ky][kx] x[oy+ky-1][ox+kx-1].
    // Row 0 sees only input row 0 through w row 1 (3, 4): 4*1=4, 3*1+4*2=11, 3*2+4*3=18, 3*3=9.
    // Row 1: w row 0 on input row 0, w row 1 on input row 1: left edge 2*1+4*4 = 18, then the
    // unpadded 37, 47, right edge 1*3+3*6 = 21. Row 2 likewise: 2*4+4*7 = 36, 67, 77,
    // 1*6+3*9 = 33. Row 3 sees input row 2 through w row 0 (1, 2): 2*7 = 14, 7+16 = 23,
    // 8+18 = 26, 9.
    let pad1 = [4., 11., 18., 9., 18., 37., 47., 21., 36., 67., 77., 33., 14., 23., 26., 9.];
    assert_eq!(conv(base.with_pad(1, 1), &X3, &W2), pad1.to_vec());
    // Pad 1, stride 2: (5-2)/2+1 = 2; the even rows/cols of the above: 4, 18, 36, 77.
    assert_eq!(conv(base.with_pad(1, 1).with_stride(2, 2), &X3, &W2), vec![4., 18., 36., 77.]);
    // Dilation 2: the 2x2 taps land on the corners: 1*1 + 2*3 + 3*7 + 4*9 = 64.
    assert_eq!(conv(base.with_dilation(2, 2), &X3, &W2), vec![64.]);
    // Asymmetric: only a left pad of 1 -> out 2x3 = rows 1..2 of the pad-1 result.
    assert_eq!(conv(base.with_pads(0, 1, 0, 0), &X3, &W2), vec![18., 37., 47., 36., 67., 77.]);
}

#[test]
fn conv_depthwise_by_hand() {
    // Two channels, groups 2: c0 = X3 with W2 -> 37, 47, 67, 77 (as above);
    // c1 = 10*X3 with [[1,0],[0,0]] picks the top-left tap: 10, 20, 40, 50.
    let p = Conv2d::depthwise(1, 2, 3, 3, 2, 2);
    let x: Vec<f32> = X3.iter().copied().chain(X3.iter().map(|v| 10. * v)).collect();
    let w = [1., 2., 3., 4., 1., 0., 0., 0.];
    assert_eq!(conv(p, &x, &w), vec![37., 47., 67., 77., 10., 20., 40., 50.]);
}

#[test]
fn conv_epilogue_order() {
    // 1x1 input 2 with 1x1 weight 3: acc = 6, two output channels with the same weight.
    // c0: bias 1 -> 7; scale 0.5, shift -1 -> 2.5; residual 4 -> 6.5; ReLU6 -> 6.
    // c1: bias 2 -> 8; scale 0.25, shift 0 -> 2; residual -10 -> -8; ReLU6 -> 0
    //     (residual after the activation would give 2 - 10 = -8 instead).
    let p = Conv2d::new(1, 1, 1, 1, 2, 1, 1);
    let mut epi = EpilogueArgs {
        bias: Some(&[1., 2.]),
        scale: Some(&[0.5, 0.25]),
        shift: Some(&[-1., 0.]),
        residual: Some(&[4., -10.]),
        act: Act::RELU6,
    };
    let y = conv2d(&p, Layout::Nchw, &[2.], &[3., 3.], &epi).unwrap();
    assert_eq!(y, vec![6., 0.]);
    // Without the activation: 6.5 and -8. Bias after scale/shift would give
    // 6*0.5-1+1+4 = 7 for c0.
    epi.act = Act::None;
    let y = conv2d(&p, Layout::Nchw, &[2.], &[3., 3.], &epi).unwrap();
    assert_eq!(y, vec![6.5, -8.]);
    // Clip(-1, 1) clips both ways: 1 and -1.
    epi.act = Act::Clip { min: -1., max: 1. };
    let y = conv2d(&p, Layout::Nchw, &[2.], &[3., 3.], &epi).unwrap();
    assert_eq!(y, vec![1., -1.]);
    assert_eq!(
        epi.epilogue().flops_per_elem(),
        1 + 2 + 1 + 2 // bias, scale/shift, residual, clip
    );
}

#[test]
fn conv_rejects_bad_buffers() {
    let p = Conv2d::new(1, 1, 3, 3, 1, 2, 2);
    let none = EpilogueArgs::none();
    let e = conv2d(&p, Layout::Nchw, &X3[..8], &W2, &none).unwrap_err();
    assert_eq!(e.to_string(), "conv: input has 8 elements, expected 9");
    assert!(conv2d(&p, Layout::Nchw, &X3, &W2[..3], &none).is_err());
    let bias_only_scale = EpilogueArgs { scale: Some(&[1.]), ..EpilogueArgs::none() };
    assert!(conv2d(&p, Layout::Nchw, &X3, &W2, &bias_only_scale).is_err());
    let bad_res = EpilogueArgs { residual: Some(&[1.; 3]), ..EpilogueArgs::none() };
    assert!(conv2d(&p, Layout::Nchw, &X3, &W2, &bad_res).is_err());
    let bad = Conv2d::new(1, 3, 3, 3, 2, 1, 1).with_groups(2);
    assert!(conv2d(&bad, Layout::Nchw, &[0.; 27], &[0.; 2], &none).is_err());
}

/// Grouped conv with 2 groups == two independent convs on the channel halves.
#[test]
fn grouped_equals_split_convs() {
    let p = Conv2d::new(2, 4, 5, 6, 6, 3, 2).with_stride(2, 1).with_pads(1, 0, 0, 1).with_groups(2);
    let x = random_uniform(p.in_len(), 1);
    let w = random_uniform(p.weight_len(), 2);
    let y = conv(p, &x, &w);
    let half = Conv2d::new(1, 2, 5, 6, 3, 3, 2).with_stride(2, 1).with_pads(1, 0, 0, 1);
    let plane = 5 * 6;
    let out_plane = half.out_len() / 3;
    for n in 0..2 {
        for g in 0..2 {
            let xs = &x[(n * 4 + g * 2) * plane..][..2 * plane];
            let ws = &w[g * half.weight_len()..][..half.weight_len()];
            let ys = conv(half, xs, ws);
            let got = &y[(n * 6 + g * 3) * out_plane..][..3 * out_plane];
            assert_eq!(got, &ys[..]);
        }
    }
}

/// groups = C (depthwise) == C single-channel convs.
#[test]
fn depthwise_equals_per_channel_convs() {
    let c = 3;
    let p = Conv2d::depthwise(1, c, 6, 5, 3, 3).with_pad(1, 1).with_stride(2, 2).with_dilation(1, 2);
    let x = random_uniform(p.in_len(), 3);
    let w = random_uniform(p.weight_len(), 4);
    let y = conv(p, &x, &w);
    let one = Conv2d::new(1, 1, 6, 5, 1, 3, 3).with_pad(1, 1).with_stride(2, 2).with_dilation(1, 2);
    let op = one.out_len();
    for ch in 0..c {
        let ys = conv(one, &x[ch * 30..][..30], &w[ch * 9..][..9]);
        assert_eq!(&y[ch * op..][..op], &ys[..]);
    }
}

/// A 1x1 conv is a GEMM: NCHW `Y[oc, p] = Σ W[oc, ic] X[ic, p]` (M = c_out, K = c_in,
/// N = H*W), and NHWC `Y[p, oc] = Σ X[p, ic] W[oc, ic]` = Linear with transB.
#[test]
fn pointwise_conv_equals_gemm() {
    let (c_in, c_out, h, w) = (5, 4, 3, 2);
    let p = Conv2d::new(1, c_in, h, w, c_out, 1, 1);
    let x = random_uniform(p.in_len(), 5);
    let wt = random_uniform(p.weight_len(), 6);
    let bias = random_uniform(c_out, 7);
    let epi = EpilogueArgs { bias: Some(&bias), ..EpilogueArgs::none() };
    let y_nchw = conv2d(&p, Layout::Nchw, &x, &wt, &epi).unwrap();
    let g = Gemm::new(c_out, h * w, c_in).with_c(GemmC::PerRow);
    assert_close(&y_nchw, &gemm(&g, &wt, &x, Some(&bias)).unwrap(), 1e-12);

    let x_nhwc = nchw_to_nhwc(&x, p.in_dims()).unwrap();
    let y_nhwc = conv2d(&p, Layout::Nhwc, &x_nhwc, &wt, &epi).unwrap();
    let lin = Gemm::linear(h * w, c_in, c_out, true);
    assert_close(&y_nhwc, &gemm(&lin, &x_nhwc, &wt, Some(&bias)).unwrap(), 1e-12);
}

/// NHWC conv (with full epilogue) is the NCHW one permuted; OIHW <-> OHWI round trips.
#[test]
fn nhwc_conv_matches_nchw() {
    let p = Conv2d::new(2, 4, 7, 6, 6, 3, 3).with_stride(2, 2).with_pads(1, 1, 0, 1).with_groups(2);
    let x = random_uniform(p.in_len(), 8);
    let w = random_uniform(p.weight_len(), 9);
    let (bias, scale, shift) = (random_uniform(6, 10), random_uniform(6, 11), random_uniform(6, 12));
    let res = random_uniform(p.out_len(), 13);
    let epi = EpilogueArgs {
        bias: Some(&bias),
        scale: Some(&scale),
        shift: Some(&shift),
        residual: Some(&res),
        act: Act::Relu,
    };
    let y = conv2d(&p, Layout::Nchw, &x, &w, &epi).unwrap();
    let res_h = nchw_to_nhwc(&res, p.out_dims()).unwrap();
    let epi_h = EpilogueArgs { residual: Some(&res_h), ..epi };
    let x_h = nchw_to_nhwc(&x, p.in_dims()).unwrap();
    let y_h = conv2d(&p, Layout::Nhwc, &x_h, &w, &epi_h).unwrap();
    assert_eq!(nhwc_to_nchw(&y_h, p.out_dims()).unwrap(), y);
    let w_ohwi = oihw_to_ohwi(&w, p.weight_dims()).unwrap();
    assert_eq!(ohwi_to_oihw(&w_ohwi, p.weight_dims()).unwrap(), w);
    // And rel_l2 of the f32-rounded result against itself is tiny but not NaN.
    let y32: Vec<f32> = y.iter().map(|&v| v as f32).collect();
    assert!(rel_l2(&y32, &y) < 1e-7);
}

#[test]
fn gemm_by_hand() {
    // A = [[1,2,3],[4,5,6]], B = [[7,8],[9,10],[11,12]]:
    // AB = [[1*7+2*9+3*11, 1*8+2*10+3*12], [4*7+5*9+6*11, 4*8+5*10+6*12]]
    //    = [[58, 64], [139, 154]].
    let a = [1., 2., 3., 4., 5., 6.];
    let b = [7., 8., 9., 10., 11., 12.];
    let at = [1., 4., 2., 5., 3., 6.]; // Aᵀ stored 3x2
    let bt = [7., 9., 11., 8., 10., 12.]; // Bᵀ stored 2x3
    let g = Gemm::new(2, 2, 3);
    assert_eq!(gemm(&g, &a, &b, None).unwrap(), vec![58., 64., 139., 154.]);
    let gt = g.with_trans(true, true);
    assert_eq!(gemm(&gt, &at, &bt, None).unwrap(), vec![58., 64., 139., 154.]);
    // alpha 2, beta 0.5, C = [[1,2],[3,4]]: 116+0.5, 128+1, 278+1.5, 308+2.
    let gc = gt.with_scalars(2., 0.5).with_c(GemmC::Full);
    assert_eq!(gemm(&gc, &at, &bt, Some(&[1., 2., 3., 4.])).unwrap(), vec![116.5, 129., 279.5, 310.]);
    // Broadcasts: scalar 1 -> +0.5 everywhere; per-row [10, 20] -> +5 / +10.
    let gs = g.with_scalars(1., 0.5).with_c(GemmC::Scalar);
    assert_eq!(gemm(&gs, &a, &b, Some(&[1.])).unwrap(), vec![58.5, 64.5, 139.5, 154.5]);
    let gr = gs.with_c(GemmC::PerRow);
    assert_eq!(gemm(&gr, &a, &b, Some(&[10., 20.])).unwrap(), vec![63., 69., 149., 164.]);
    // C required when declared, forbidden when not.
    assert!(gemm(&gr, &a, &b, None).is_err());
    assert!(gemm(&g, &a, &b, Some(&[1.])).is_err());
}

#[test]
fn linear_by_hand() {
    // x = [1,2,3], W = [[1,0,-1],[0.5,0.5,0.5]], b = [10,20]:
    // y0 = 1-3+10 = 8, y1 = 0.5*(1+2+3)+20 = 23. Batch row 2: x = [0,0,2] -> -2+10, 1+20.
    let lin = Gemm::linear(2, 3, 2, true);
    let y = gemm(&lin, &[1., 2., 3., 0., 0., 2.], &[1., 0., -1., 0.5, 0.5, 0.5], Some(&[10., 20.])).unwrap();
    assert_eq!(y, vec![8., 23., 8., 21.]);
}

#[test]
fn pool_padded_corner_by_hand() {
    // X3 with k=2, s=2, pad=1 -> 2x2 windows (input coords): rows {-1,0} / {1,2},
    // cols likewise. Real elements: (0,0) {1}; (0,1) {2,3}; (1,0) {4,7}; (1,1) {5,6,8,9}.
    let base = |p: Pool2d| p.with_stride(2, 2).with_pad(1, 1);
    let max = base(Pool2d::max(1, 1, 3, 3, 2, 2));
    assert_eq!(pool2d(&max, Layout::Nchw, &X3).unwrap(), vec![1., 3., 7., 9.]);
    // count_include_pad: every window is 2x2 = 4: 1/4, 5/4, 11/4, 28/4.
    let inc = base(Pool2d::avg(1, 1, 3, 3, 2, 2, true));
    assert_eq!(pool2d(&inc, Layout::Nchw, &X3).unwrap(), vec![0.25, 1.25, 2.75, 7.]);
    // Excluding padding: 1/1, 5/2, 11/2, 28/4.
    let exc = base(Pool2d::avg(1, 1, 3, 3, 2, 2, false));
    assert_eq!(pool2d(&exc, Layout::Nchw, &X3).unwrap(), vec![1., 2.5, 5.5, 7.]);
}

#[test]
fn pool_ceil_mode_by_hand() {
    // 1-D along w: x = [1,2,3,4], k=3, s=2, pad=1, ceil: out 3 (see ops tests).
    // Windows in input coords [-1,1], [1,3], [3,5]. The last one covers input 3, the right
    // pad (4) and one position beyond the padded input (5).
    // Include pad: divisors clipped to the padded input [-1, 5): 3, 3, 2 ->
    //   (1+2)/3 = 1, (2+3+4)/3 = 3, 4/2 = 2   (torch.avg_pool1d gives [1, 3, 2]).
    // Exclude pad: (1+2)/2 = 1.5, 3, 4/1 = 4.
    let x = [1., 2., 3., 4.];
    let p = |inc| Pool2d::avg(1, 1, 1, 4, 1, 3, inc).with_stride(1, 2).with_pads(0, 1, 0, 1).with_ceil_mode(true);
    assert_eq!(pool2d(&p(true), Layout::Nchw, &x).unwrap(), vec![1., 3., 2.]);
    assert_eq!(pool2d(&p(false), Layout::Nchw, &x).unwrap(), vec![1.5, 3., 4.]);
    // X3, k=2, s=2, no pad, ceil: out 2x2; the bottom/right windows are clipped to the
    // input (no padding to count): max 5, 6, 8, 9; avg (1+2+4+5)/4 = 3, (3+6)/2 = 4.5,
    // (7+8)/2 = 7.5, 9/1 = 9, whether or not padding counts.
    let m = Pool2d::max(1, 1, 3, 3, 2, 2).with_stride(2, 2).with_ceil_mode(true);
    assert_eq!(pool2d(&m, Layout::Nchw, &X3).unwrap(), vec![5., 6., 8., 9.]);
    for inc in [false, true] {
        let a = Pool2d::avg(1, 1, 3, 3, 2, 2, inc).with_stride(2, 2).with_ceil_mode(true);
        assert_eq!(pool2d(&a, Layout::Nchw, &X3).unwrap(), vec![3., 4.5, 7.5, 9.]);
    }
}

#[test]
fn max_pool_dilated_by_hand() {
    // k=2, dilation 2 on a 3x3 input: taps are the four corners 5, 2, 3, 4 -> 5; the 9s in
    // the middle row/column are skipped.
    let x = [5., 1., 2., 9., 9., 9., 3., 9., 4.];
    let p = Pool2d::max(1, 1, 3, 3, 2, 2).with_dilation(2, 2);
    assert_eq!(pool2d(&p, Layout::Nchw, &x).unwrap(), vec![5.]);
}

#[test]
fn global_avg_equals_full_window_avg_and_layouts_agree() {
    let (n, c, h, w) = (2, 3, 4, 5);
    let x = random_uniform(n * c * h * w, 14);
    let g = pool2d(&Pool2d::global_avg(n, c, h, w), Layout::Nchw, &x).unwrap();
    let a = pool2d(&Pool2d::avg(n, c, h, w, h, w, false), Layout::Nchw, &x).unwrap();
    assert_close(&g, &a, 1e-15);
    // By hand for one plane: X3's mean is 45/9 = 5.
    let one = pool2d(&Pool2d::global_avg(1, 1, 3, 3), Layout::Nchw, &X3).unwrap();
    assert_eq!(one, vec![5.]);
    // NHWC gives the NCHW result permuted.
    let p = Pool2d::max(n, c, h, w, 3, 2).with_stride(2, 2).with_pad(1, 1).with_ceil_mode(true);
    let y = pool2d(&p, Layout::Nchw, &x).unwrap();
    let x_h = nchw_to_nhwc(&x, p.in_dims()).unwrap();
    let y_h = pool2d(&p, Layout::Nhwc, &x_h).unwrap();
    assert_eq!(nhwc_to_nchw(&y_h, p.out_dims()).unwrap(), y);
}

#[test]
fn lrn_by_hand() {
    // 1x5x1x1, x = [1,2,3,4,5], size 3 -> window [c-1, c+1]; alpha 3 so alpha/size = 1;
    // beta 1, bias 1: y = x / (1 + Σ x²).
    // c0: 1/(1+1+4) = 1/6; c1: 2/(1+1+4+9) = 2/15; c2: 3/(1+4+9+16) = 3/30;
    // c3: 4/(1+9+16+25) = 4/51; c4: 5/(1+16+25) = 5/42.
    let x = [1., 2., 3., 4., 5.];
    let p = Lrn::new(1, 5, 1, 1, 3).with_params(3.0, 1.0, 1.0);
    assert_close(&lrn(&p, Layout::Nchw, &x).unwrap(), &[1. / 6., 2. / 15., 3. / 30., 4. / 51., 5. / 42.], 1e-15);
    // Even size 2: floor(1/2) = 0 before, ceil(1/2) = 1 after -> window [c, c+1].
    // alpha 2 (alpha/size = 1), beta 0.5, bias 1: y = x / sqrt(1 + x_c² + x_{c+1}²).
    // c0: 1/sqrt(6); c3: 4/sqrt(42); c4 (window clipped to [4]): 5/sqrt(26).
    let p = Lrn::new(1, 5, 1, 1, 2).with_params(2.0, 0.5, 1.0);
    let y = lrn(&p, Layout::Nchw, &x).unwrap();
    assert_close(&[y[0], y[3], y[4]], &[1. / 6f64.sqrt(), 4. / 42f64.sqrt(), 5. / 26f64.sqrt()], 1e-15);
    // Spatial positions are independent, and NHWC agrees: 1x5x1x2 with the second pixel
    // all zeros -> zeros there.
    let p = Lrn::new(1, 5, 1, 2, 3).with_params(3.0, 1.0, 1.0);
    // NCHW: each channel's plane is (x_c, 0).
    let xh: Vec<f32> = x.iter().flat_map(|&v| [v, 0.]).collect();
    let y = lrn(&p, Layout::Nchw, &xh).unwrap();
    assert_close(&[y[4], y[5]], &[3. / 30., 0.], 1e-15);
    let y_h = lrn(&p, Layout::Nhwc, &nchw_to_nhwc(&xh, p.dims()).unwrap()).unwrap();
    assert_eq!(nhwc_to_nchw(&y_h, p.dims()).unwrap(), y);
}

#[test]
fn reference_inputs_with_nan_never_pass() {
    let p = Conv2d::new(1, 1, 3, 3, 1, 2, 2);
    let y = conv(p, &X3, &W2);
    let mut out: Vec<f32> = y.iter().map(|&v| v as f32).collect();
    assert_eq!(rel_l2(&out, &y), 0.0);
    out[2] = f32::NAN;
    assert_eq!(rel_l2(&out, &y), f64::INFINITY);
}

/// The oracle must be usable on full-size layers: ResNet-50 conv2_x 3x3 (56x56x64 -> 64,
/// 0.23 GFLOP) well under a second. Timed only in release builds.
#[test]
#[cfg_attr(debug_assertions, ignore = "timing is meaningful in release only")]
fn resnet50_3x3_is_fast_enough_in_release() {
    let p = Conv2d::new(1, 64, 56, 56, 64, 3, 3).with_pad(1, 1);
    let x = random_uniform(p.in_len(), 15);
    let w = random_uniform(p.weight_len(), 16);
    let t = std::time::Instant::now();
    let y = conv2d(&p, Layout::Nchw, &x, &w, &EpilogueArgs::none()).unwrap();
    let dt = t.elapsed();
    assert_eq!(y.len(), 64 * 56 * 56);
    assert!(dt.as_secs_f64() < 1.0, "took {dt:?}");
    eprintln!("resnet50 3x3 conv reference: {dt:?}");
}

/// Inference BN == a 1x1 identity conv whose epilogue applies the folded scale/shift.
#[test]
fn folded_batch_norm_matches_batch_norm() {
    let (n, c, h, w) = (2, 3, 2, 2);
    let x = random_uniform(n * c * h * w, 17);
    let (gamma, beta, mean) = (random_uniform(c, 18), random_uniform(c, 19), random_uniform(c, 20));
    let var = random_uniform_in(c, 21, 0.5, 1.5);
    let bn = BatchNorm::new(n, c, h, w);
    let want = batch_norm(&bn, Layout::Nchw, &x, &gamma, &beta, &mean, &var).unwrap();
    let (scale, shift) = fold_batch_norm(&gamma, &beta, &mean, &var, bn.eps).unwrap();
    let p = Conv2d::new(n, c, h, w, c, 1, 1);
    let eye: Vec<f32> = (0..c * c).map(|i| if i % (c + 1) == 0 { 1. } else { 0. }).collect();
    let epi = EpilogueArgs { scale: Some(&scale), shift: Some(&shift), ..EpilogueArgs::none() };
    let got = conv2d(&p, Layout::Nchw, &x, &eye, &epi).unwrap();
    // scale/shift are rounded to f32: agreement to f32 precision, not exactly.
    let got32: Vec<f32> = got.iter().map(|&v| v as f32).collect();
    assert!(rel_l2(&got32, &want) < 1e-6);
}
