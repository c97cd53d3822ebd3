//! Tensor cores, sm_80+: warp-wide `mma.sync` (f16, bf16, tf32 → f32), `ldmatrix`, and
//! the `f32 → tf32` conversion.
//!
//! Every function here is `.sync.aligned`: all 32 lanes of the warp must execute the
//! same call, converged, with no lane masked off. The asm is deliberately *not* `pure`
//! so LLVM treats it as having side effects and never sinks it into a lane-dependent
//! branch or drops it.
//!
//! # Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16/m16n8k8")
//!
//! With `lane = %laneid`, `g = lane >> 2` ("groupID") and `t = lane & 3`
//! ("threadID_in_group"). A `.f16x2`/`.bf16x2` register holds its lower-indexed element
//! in bits 0..16. The `*_coord` functions below compute exactly these tables.
//!
//! **m16n8k16, A (16×16, row-major "row")**: 4 regs, 8 halves `a0..a7`,
//! reg `r` holds `a[2r], a[2r+1]`:
//!
//! | reg | elements | row | cols |
//! |-----|----------|-----|------|
//! | 0 | a0 a1 | g     | 2t, 2t+1     |
//! | 1 | a2 a3 | g + 8 | 2t, 2t+1     |
//! | 2 | a4 a5 | g     | 2t+8, 2t+9   |
//! | 3 | a6 a7 | g + 8 | 2t+8, 2t+9   |
//!
//! **m16n8k16, B (16×8, "col")**: 2 regs, `b0..b3`, consecutive `k` in one reg:
//!
//! | reg | elements | rows (k) | col (n) |
//! |-----|----------|----------|---------|
//! | 0 | b0 b1 | 2t, 2t+1   | g |
//! | 1 | b2 b3 | 2t+8, 2t+9 | g |
//!
//! **C/D (16×8 f32, both shapes)**: 4 regs `c0..c3`: `c0,c1` at row `g`, `c2,c3` at
//! row `g + 8`, columns `2t, 2t+1`.
//!
//! **m16n8k8 tf32, A (16×8)**: 4 regs: `a0` (g, t), `a1` (g+8, t), `a2` (g, t+4),
//! `a3` (g+8, t+4). **B (8×8)**: `b0` (k = t, n = g), `b1` (k = t+4, n = g).
//!
//! # `ldmatrix` (m8n8, 16-bit elements)
//! `.x1`/`.x2`/`.x4` load 1/2/4 8×8 matrices. Lanes `8j..8j+8` supply the shared
//! addresses of rows `0..8` of matrix `j` (16 contiguous bytes each, 16-byte aligned;
//! lanes beyond the used ones are ignored but should hold a valid address). Register
//! `j` of every lane receives matrix `j`'s elements `(row g, cols 2t, 2t+1)`; with
//! `.trans` it receives `(rows 2t, 2t+1, col g)` of the stored matrix instead. Hence:
//!
//! * A (16×16 row-major in smem) → `ldmatrix_x4` with lane `l` pointing at
//!   `&A[l % 16][(l / 16) * 8]` yields exactly the A fragment above.
//! * B stored k-major (`B[k][n]`, row-major K×N) → `ldmatrix_x2_trans` with lane `l`
//!   pointing at `&B[l % 16][n0]` yields the B fragment for columns `n0..n0+8`;
//!   `ldmatrix_x4_trans` with lane `l` pointing at `&B[l % 16][n0 + (l / 16) * 8]` yields
//!   the B fragments of two adjacent n-tiles (regs 0,1 and 2,3).

use super::lang::asm;

/// `(row, col)` in the 16×16 A tile of element `i` (0..8) of `lane`'s m16n8k16 A
/// fragment (register `i / 2`, half `i % 2`).
#[inline(always)]
pub fn a_m16n8k16_coord(lane: u32, i: u32) -> (u32, u32) {
    let (g, t) = (lane >> 2, lane & 3);
    let row = g + 8 * ((i >> 1) & 1);
    let col = 2 * t + (i & 1) + 8 * (i >> 2);
    (row, col)
}

/// `(k, n)` in the 16×8 B tile of element `i` (0..4) of `lane`'s m16n8k16 B fragment
/// (register `i / 2`, half `i % 2`).
#[inline(always)]
pub fn b_m16n8k16_coord(lane: u32, i: u32) -> (u32, u32) {
    let (g, t) = (lane >> 2, lane & 3);
    (2 * t + (i & 1) + 8 * (i >> 1), g)
}

/// `(row, col)` in the 16×8 C/D tile of element `i` (0..4) of `lane`'s accumulator.
#[inline(always)]
pub fn c_m16n8_coord(lane: u32, i: u32) -> (u32, u32) {
    let (g, t) = (lane >> 2, lane & 3);
    (g + 8 * (i >> 1), 2 * t + (i & 1))
}

/// `(row, col)` in the 16×8 A tile of register `i` (0..4) of `lane`'s m16n8k8 tf32 A
/// fragment.
#[inline(always)]
pub fn a_m16n8k8_tf32_coord(lane: u32, i: u32) -> (u32, u32) {
    let (g, t) = (lane >> 2, lane & 3);
    (g + 8 * (i & 1), t + 4 * (i >> 1))
}

/// `(k, n)` in the 8×8 B tile of register `i` (0..2) of `lane`'s m16n8k8 tf32 B fragment.
#[inline(always)]
pub fn b_m16n8k8_tf32_coord(lane: u32, i: u32) -> (u32, u32) {
    let (g, t) = (lane >> 2, lane & 3);
    (t + 4 * i, g)
}

/// `cvt.rna.tf32.f32`: round to tf32 (10 mantissa bits, nearest, ties away from zero);
/// the result is an `f32` bit pattern with the low 13 bits zero.
#[inline(always)]
pub fn tf32_from_f32(x: f32) -> u32 {
    let r: u32;
    unsafe {
        asm!("cvt.rna.tf32.f32 {r}, {x};", r = out(reg32) r, x = in(reg32) x, options(pure, nomem, nostack));
    }
    r
}

/// `mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32`: `D = A·B + C` for a 16×16 f16 A,
/// 16×8 f16 B, 16×8 f32 C/D, fragments as in the module docs. Products are exact,
/// accumulation is in (at least) f32.
#[inline(always)]
pub fn mma_m16n8k16_f16(a: [u32; 4], b: [u32; 2], c: [f32; 4]) -> [f32; 4] {
    let (d0, d1, d2, d3): (f32, f32, f32, f32);
    unsafe {
        asm!(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {{{d0}, {d1}, {d2}, {d3}}}, {{{a0}, {a1}, {a2}, {a3}}}, {{{b0}, {b1}}}, {{{c0}, {c1}, {c2}, {c3}}};",
            d0 = out(reg32) d0,
            d1 = out(reg32) d1,
            d2 = out(reg32) d2,
            d3 = out(reg32) d3,
            a0 = in(reg32) a[0],
            a1 = in(reg32) a[1],
            a2 = in(reg32) a[2],
            a3 = in(reg32) a[3],
            b0 = in(reg32) b[0],
            b1 = in(reg32) b[1],
            c0 = in(reg32) c[0],
            c1 = in(reg32) c[1],
            c2 = in(reg32) c[2],
            c3 = in(reg32) c[3],
            options(nomem, nostack),
        );
    }
    [d0, d1, d2, d3]
}

/// `mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32`: as [`mma_m16n8k16_f16`] with
/// bf16 inputs.
#[inline(always)]
pub fn mma_m16n8k16_bf16(a: [u32; 4], b: [u32; 2], c: [f32; 4]) -> [f32; 4] {
    let (d0, d1, d2, d3): (f32, f32, f32, f32);
    unsafe {
        asm!(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {{{d0}, {d1}, {d2}, {d3}}}, {{{a0}, {a1}, {a2}, {a3}}}, {{{b0}, {b1}}}, {{{c0}, {c1}, {c2}, {c3}}};",
            d0 = out(reg32) d0,
            d1 = out(reg32) d1,
            d2 = out(reg32) d2,
            d3 = out(reg32) d3,
            a0 = in(reg32) a[0],
            a1 = in(reg32) a[1],
            a2 = in(reg32) a[2],
            a3 = in(reg32) a[3],
            b0 = in(reg32) b[0],
            b1 = in(reg32) b[1],
            c0 = in(reg32) c[0],
            c1 = in(reg32) c[1],
            c2 = in(reg32) c[2],
            c3 = in(reg32) c[3],
            options(nomem, nostack),
        );
    }
    [d0, d1, d2, d3]
}

/// `mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32`: `D = A·B + C` for a 16×8 tf32 A,
/// 8×8 tf32 B (each a [`tf32_from_f32`] bit pattern), 16×8 f32 C/D.
#[inline(always)]
pub fn mma_m16n8k8_tf32(a: [u32; 4], b: [u32; 2], c: [f32; 4]) -> [f32; 4] {
    let (d0, d1, d2, d3): (f32, f32, f32, f32);
    unsafe {
        asm!(
            "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {{{d0}, {d1}, {d2}, {d3}}}, {{{a0}, {a1}, {a2}, {a3}}}, {{{b0}, {b1}}}, {{{c0}, {c1}, {c2}, {c3}}};",
            d0 = out(reg32) d0,
            d1 = out(reg32) d1,
            d2 = out(reg32) d2,
            d3 = out(reg32) d3,
            a0 = in(reg32) a[0],
            a1 = in(reg32) a[1],
            a2 = in(reg32) a[2],
            a3 = in(reg32) a[3],
            b0 = in(reg32) b[0],
            b1 = in(reg32) b[1],
            c0 = in(reg32) c[0],
            c1 = in(reg32) c[1],
            c2 = in(reg32) c[2],
            c3 = in(reg32) c[3],
            options(nomem, nostack),
        );
    }
    [d0, d1, d2, d3]
}

/// `ldmatrix.sync.aligned.m8n8.x1.shared.b16`: one 8×8 matrix (lanes 0..8 give rows).
///
/// # Safety
/// `addr` is a 16-byte-aligned shared address of 16 readable bytes (see module docs).
#[inline(always)]
pub unsafe fn ldmatrix_x1(addr: u32) -> u32 {
    let r: u32;
    unsafe {
        asm!(
            "ldmatrix.sync.aligned.m8n8.x1.shared.b16 {{{r}}}, [{a}];",
            r = out(reg32) r,
            a = in(reg32) addr,
            options(readonly, nostack),
        );
    }
    r
}

/// `ldmatrix.sync.aligned.m8n8.x2.shared.b16`: two 8×8 matrices (lanes 0..16 give rows).
///
/// # Safety
/// As for [`ldmatrix_x1`].
#[inline(always)]
pub unsafe fn ldmatrix_x2(addr: u32) -> [u32; 2] {
    let (r0, r1): (u32, u32);
    unsafe {
        asm!(
            "ldmatrix.sync.aligned.m8n8.x2.shared.b16 {{{r0}, {r1}}}, [{a}];",
            r0 = out(reg32) r0,
            r1 = out(reg32) r1,
            a = in(reg32) addr,
            options(readonly, nostack),
        );
    }
    [r0, r1]
}

/// `ldmatrix.sync.aligned.m8n8.x4.shared.b16`: four 8×8 matrices (all lanes give rows).
///
/// # Safety
/// As for [`ldmatrix_x1`].
#[inline(always)]
pub unsafe fn ldmatrix_x4(addr: u32) -> [u32; 4] {
    let (r0, r1, r2, r3): (u32, u32, u32, u32);
    unsafe {
        asm!(
            "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {{{r0}, {r1}, {r2}, {r3}}}, [{a}];",
            r0 = out(reg32) r0,
            r1 = out(reg32) r1,
            r2 = out(reg32) r2,
            r3 = out(reg32) r3,
            a = in(reg32) addr,
            options(readonly, nostack),
        );
    }
    [r0, r1, r2, r3]
}

/// `ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16`: two transposed 8×8 matrices.
///
/// # Safety
/// As for [`ldmatrix_x1`].
#[inline(always)]
pub unsafe fn ldmatrix_x2_trans(addr: u32) -> [u32; 2] {
    let (r0, r1): (u32, u32);
    unsafe {
        asm!(
            "ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {{{r0}, {r1}}}, [{a}];",
            r0 = out(reg32) r0,
            r1 = out(reg32) r1,
            a = in(reg32) addr,
            options(readonly, nostack),
        );
    }
    [r0, r1]
}

/// `ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16`: four transposed 8×8 matrices.
///
/// # Safety
/// As for [`ldmatrix_x1`].
#[inline(always)]
pub unsafe fn ldmatrix_x4_trans(addr: u32) -> [u32; 4] {
    let (r0, r1, r2, r3): (u32, u32, u32, u32);
    unsafe {
        asm!(
            "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {{{r0}, {r1}, {r2}, {r3}}}, [{a}];",
            r0 = out(reg32) r0,
            r1 = out(reg32) r1,
            r2 = out(reg32) r2,
            r3 = out(reg32) r3,
            a = in(reg32) addr,
            options(readonly, nostack),
        );
    }
    [r0, r1, r2, r3]
}
