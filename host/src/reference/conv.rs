//! 2-D convolution with the fused epilogue.

use super::layout::to_layout;
use crate::ops::{check_len, invalid, Act, Conv2d, Epilogue, Layout, OpError};

/// Operands of a conv's fused epilogue: `y = act((acc + bias) * scale + shift + residual)`
/// (ResNet order: residual after the folded batch-norm, before the activation).
/// `bias`, `scale`, `shift` have `c_out` elements; `residual` is shaped like the output,
/// in the output's layout. `scale` and `shift` come together or not at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct EpilogueArgs<'a> {
    pub bias: Option<&'a [f32]>,
    pub scale: Option<&'a [f32]>,
    pub shift: Option<&'a [f32]>,
    pub residual: Option<&'a [f32]>,
    pub act: Act,
}

impl<'a> EpilogueArgs<'a> {
    /// No epilogue: the plain convolution.
    pub fn none() -> Self {
        EpilogueArgs::default()
    }

    /// The [`Epilogue`] descriptor these operands implement.
    pub fn epilogue(&self) -> Epilogue {
        Epilogue {
            bias: self.bias.is_some(),
            scale_shift: self.scale.is_some(),
            act: self.act,
            residual: self.residual.is_some(),
        }
    }

    fn validate(&self, c_out: usize, out_len: usize) -> Result<(), OpError> {
        const OP: &str = "conv";
        if self.scale.is_some() != self.shift.is_some() {
            return Err(invalid(OP, "scale and shift must be given together"));
        }
        self.act.validate()?;
        if let Some(b) = self.bias {
            check_len(OP, "bias", b.len(), c_out)?;
        }
        if let Some(s) = self.scale {
            check_len(OP, "scale", s.len(), c_out)?;
        }
        if let Some(s) = self.shift {
            check_len(OP, "shift", s.len(), c_out)?;
        }
        if let Some(r) = self.residual {
            check_len(OP, "residual", r.len(), out_len)?;
        }
        Ok(())
    }
}

/// Convolution as ONNX Conv / `torch.nn.functional.conv2d` define it (cross-correlation):
///
/// `acc[n,oc,oy,ox] = Σ_{icg, ky, kx} x[n, g*Cg + icg, oy*sh + ky*dh - pad_t,
/// ox*sw + kx*dw - pad_l] * w[oc, icg, ky, kx]`, with `g = oc / (c_out/groups)`,
/// `Cg = c_in/groups`, and out-of-range taps reading zero padding; then the epilogue
/// `y = act((acc + bias[oc]) * scale[oc] + shift[oc] + residual[n,oc,oy,ox])`, each part
/// only when given.
///
/// `x`, `residual` and the result use `layout`; `w` is OIHW `[c_out, c_in/groups, kh, kw]`
/// in every layout (convert NHWC kernels' OHWI weights back with
/// [`ohwi_to_oihw`](super::ohwi_to_oihw)).
pub fn conv2d(p: &Conv2d, layout: Layout, x: &[f32], w: &[f32], epi: &EpilogueArgs) -> Result<Vec<f64>, OpError> {
    const OP: &str = "conv";
    p.validate()?;
    check_len(OP, "input", x.len(), p.in_len())?;
    check_len(OP, "weights", w.len(), p.weight_len())?;
    epi.validate(p.c_out, p.out_len())?;

    // The arithmetic is done once, in NCHW; NHWC is a permutation around it.
    let x = to_layout(x, p.in_dims(), layout, Layout::Nchw)?;
    let mut y = conv_nchw(p, &x, w);

    let out_dims = p.out_dims();
    let residual = match epi.residual {
        Some(r) => Some(to_layout(r, out_dims, layout, Layout::Nchw)?),
        None => None,
    };
    for (i, v) in y.iter_mut().enumerate() {
        let oc = Layout::Nchw.channel_of(out_dims, i);
        let mut a = *v;
        if let Some(b) = epi.bias {
            a += b[oc] as f64;
        }
        if let (Some(s), Some(t)) = (epi.scale, epi.shift) {
            a = a * s[oc] as f64 + t[oc] as f64;
        }
        if let Some(r) = &residual {
            a += r[i] as f64;
        }
        *v = epi.act.apply(a);
    }
    to_layout(&y, out_dims, Layout::Nchw, layout)
}

/// The bare convolution sum, NCHW in and out. Loop order keeps the innermost loop on a
/// contiguous output row so the oracle stays fast enough for full-size layers.
fn conv_nchw(p: &Conv2d, x: &[f32], w: &[f32]) -> Vec<f64> {
    let (oh, ow) = p.out_hw();
    let (h, wd) = (p.h as isize, p.w as isize);
    let cig = p.c_in_per_group();
    let cog = p.c_out / p.groups;
    let mut y = vec![0.0f64; p.out_len()];
    for n in 0..p.n {
        for oc in 0..p.c_out {
            let g = oc / cog;
            let plane = &mut y[(n * p.c_out + oc) * oh * ow..][..oh * ow];
            for icg in 0..cig {
                let ic = g * cig + icg;
                let xplane = &x[(n * p.c_in + ic) * p.h * p.w..][..p.h * p.w];
                for ky in 0..p.kh {
                    for kx in 0..p.kw {
                        let wv = w[((oc * cig + icg) * p.kh + ky) * p.kw + kx] as f64;
                        for oy in 0..oh {
                            let iy = (oy * p.stride_h + ky * p.dil_h) as isize - p.pad_t as isize;
                            if iy < 0 || iy >= h {
                                continue; // zero padding
                            }
                            let xrow = &xplane[iy as usize * p.w..][..p.w];
                            let yrow = &mut plane[oy * ow..][..ow];
                            for (ox, yv) in yrow.iter_mut().enumerate() {
                                let ix = (ox * p.stride_w + kx * p.dil_w) as isize - p.pad_l as isize;
                                if (0..wd).contains(&ix) {
                                    *yv += wv * xrow[ix as usize] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    y
}
