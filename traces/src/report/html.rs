//! `cnnergy report --format html`: one self-contained page (inline SVG, CSS and a few
//! lines of script, no network) with the figures, the tables and five charts drawn by
//! plotters' SVG backend:
//!
//! * `chart-energy-layers` — energy per layer (bars ± 95% CI, coloured by layer type),
//! * `chart-power` — power over the analysed window per sensor, with the GPU's kernel
//!   activity underneath, coloured by layer type,
//! * `chart-inference` — one inference kernel by kernel (coloured by type, height =
//!   attributed power),
//! * `chart-type-shares` — energy and time shares by layer type,
//! * `chart-roofline` — GFLOP/J against arithmetic intensity (log-log), per layer.
//!
//! Without power data the energy charts show time instead and say so. Plotters is
//! built without font features: text is emitted as SVG `<text>` for the browser to
//! lay out, so nothing depends on fontconfig.

use std::fmt::Write as _;
use std::io::{self, Write};

use plotters::prelude::*;

use super::table::{html_escape, Tab};
use super::{kernel_table, layer_table, model_table, type_table, Analysis, Sort, BINS};
use crate::energy::LayerType;

/// The chart ids, in page order (tests check every one is drawn).
pub const CHARTS: [&str; 5] =
    ["chart-energy-layers", "chart-power", "chart-inference", "chart-type-shares", "chart-roofline"];

type DynErr = Box<dyn std::error::Error>;
/// A chart: its SVG and caption.
type Chart = fn(&Analysis) -> Result<(String, String), DynErr>;

/// Colour of a layer type (Tableau 10).
pub fn type_color(t: LayerType) -> RGBColor {
    match t {
        LayerType::Conv => RGBColor(0x4e, 0x79, 0xa7),
        LayerType::Fc => RGBColor(0xf2, 0x8e, 0x2b),
        LayerType::Pool => RGBColor(0x59, 0xa1, 0x4f),
        LayerType::Activation => RGBColor(0xe1, 0x57, 0x59),
        LayerType::Norm => RGBColor(0xb0, 0x7a, 0xa1),
        LayerType::Other => RGBColor(0x9c, 0x9c, 0x9c),
    }
}

const SENSOR_COLORS: [RGBColor; 4] =
    [RGBColor(0x1f, 0x1f, 0x1f), RGBColor(0xd6, 0x27, 0x28), RGBColor(0x94, 0x67, 0xbd), RGBColor(0x17, 0xbe, 0xcf)];

const FONT: &str = "sans-serif";
const WIDTH: u32 = 960;
const MAX_BARS: usize = 40;

/// Row `i` of a segmented axis counted from the top (segment 0 is at the bottom);
/// plotters also asks for labels outside `0..n`.
fn flip(n: usize, i: i32) -> Option<usize> {
    usize::try_from(i).ok().and_then(|i| (n - 1).checked_sub(i))
}

fn svg(
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend, plotters::coord::Shift>) -> Result<(), DynErr>,
) -> Result<String, DynErr> {
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(root.clone())?;
        root.present()?;
    }
    Ok(s)
}

fn energy_layers(a: &Analysis) -> Result<(String, String), DynErr> {
    let mut layers: Vec<&crate::energy::figures::LayerFigures> = a.figures.layers.iter().collect();
    let value = |l: &crate::energy::figures::LayerFigures| {
        if a.energy {
            (l.energy_mj.value, l.energy_mj.ci95)
        } else {
            (l.time_ms.value, l.time_ms.ci95)
        }
    };
    let mut caption = if a.energy {
        "Energy per layer and inference (mJ, bars: 95% CI)".to_string()
    } else {
        "GPU time per layer and inference (ms, bars: 95% CI) — no power data".to_string()
    };
    if layers.len() > MAX_BARS {
        layers.sort_by(|x, y| value(y).0.total_cmp(&value(x).0));
        layers.truncate(MAX_BARS);
        layers.sort_by_key(|l| l.layer);
        let _ = write!(caption, ", the {MAX_BARS} largest of {} layers", a.figures.layers.len());
    }
    let n = layers.len().max(1);
    let xmax =
        layers.iter().map(|l| value(l)).map(|(v, c)| v + if c.is_finite() { c } else { 0.0 }).fold(0.0, f64::max);
    let xmax = if xmax > 0.0 { xmax * 1.05 } else { 1.0 };
    let names: Vec<String> = layers.iter().map(|l| l.name.clone()).collect();
    let label_w = (names.iter().map(|s| s.len()).max().unwrap_or(4) as u32 * 7 + 16).clamp(60, 320);
    let body = svg((WIDTH, 70 + 18 * n as u32), |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(label_w)
            .build_cartesian_2d(0f64..xmax, (0..n as i32 - 1).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => flip(n, *i).and_then(|j| names.get(j)).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_desc(if a.energy { "mJ per inference" } else { "ms per inference" })
            .label_style((FONT, 12))
            .draw()?;
        // Segment 0 is at the bottom: the first layer goes to the top.
        let row = |i: usize| (n - 1 - i) as i32;
        chart.draw_series(layers.iter().enumerate().map(|(i, l)| {
            let (v, _) = value(l);
            let i = row(i);
            let c = type_color(l.layer_type);
            Rectangle::new([(0.0, SegmentValue::Exact(i)), (v.max(0.0), SegmentValue::Exact(i + 1))], c.filled())
        }))?;
        for (i, l) in layers.iter().enumerate() {
            let (v, ci) = value(l);
            if ci.is_finite() && ci > 0.0 {
                let y = SegmentValue::CenterOf(row(i));
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![((v - ci).max(0.0), y.clone()), (v + ci, y)],
                    BLACK.stroke_width(2),
                )))?;
            }
        }
        Ok(())
    })?;
    Ok((body, caption))
}

fn power(a: &Analysis) -> Result<(String, String), DynErr> {
    let tl = &a.timeline;
    let (t0, t1) = tl.window;
    let span_ms = ((t1.saturating_sub(t0)) as f64 * 1e-6).max(1e-6);
    let ms = |t: u64| (t as f64 - t0 as f64) * 1e-6;
    let ymax = tl.power.iter().flat_map(|(_, xs)| xs.iter().map(|x| x.1)).fold(0.0, f64::max);
    let ymax = if ymax > 0.0 { ymax * 1.1 } else { 1.0 };
    let caption = format!(
        "Power over the analysed window ({:.0} ms) per sensor; below, GPU busy fraction by layer type",
        span_ms
    );
    let body = svg((WIDTH, 420), |root| {
        let (top, bottom) = root.split_vertically(290);
        let mut chart = ChartBuilder::on(&top)
            .margin(10)
            .x_label_area_size(20)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..span_ms, 0f64..ymax)?;
        chart.configure_mesh().y_desc("W").label_style((FONT, 12)).draw()?;
        for (i, (sensor, xs)) in tl.power.iter().enumerate() {
            let c = SENSOR_COLORS[i % SENSOR_COLORS.len()];
            chart
                .draw_series(LineSeries::new(
                    xs.iter().map(|&(t, w)| (ms(t).clamp(0.0, span_ms), w)),
                    c.stroke_width(1),
                ))?
                .label(sensor.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
        }
        if !tl.power.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .label_font((FONT, 12))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
        let mut act = ChartBuilder::on(&bottom)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..span_ms, 0f64..1f64)?;
        act.configure_mesh().x_desc("ms").y_desc("busy").y_labels(3).label_style((FONT, 12)).draw()?;
        let bw = span_ms / BINS as f64;
        let bin_ns = (t1.saturating_sub(t0)) as f64 / BINS as f64;
        for (ti, ty) in LayerType::ALL.iter().enumerate() {
            let c = type_color(*ty);
            act.draw_series(tl.activity.iter().enumerate().filter(|(_, b)| b[ti] > 0.0).map(|(i, b)| {
                let below: f64 = b[..ti].iter().sum::<f64>() / bin_ns;
                let h = b[ti] / bin_ns;
                let x = i as f64 * bw;
                Rectangle::new([(x, below.min(1.0)), (x + bw, (below + h).min(1.0))], c.filled())
            }))?
            .label(ty.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
        }
        Ok(())
    })?;
    Ok((body, caption))
}

fn inference(a: &Analysis) -> Result<(String, String), DynErr> {
    let tl = &a.timeline;
    let spans = &tl.zoom;
    let t0 = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let t1 = spans.iter().map(|s| s.start_ns + s.duration_ns).max().unwrap_or(t0 + 1);
    let span_us = ((t1 - t0) as f64 * 1e-3).max(1e-3);
    let has_power = spans.iter().any(|s| s.power_w.is_finite());
    let ymax = spans.iter().map(|s| s.power_w).filter(|p| p.is_finite()).fold(0.0, f64::max);
    let ymax = if has_power && ymax > 0.0 { ymax * 1.1 } else { 1.0 };
    let caption = match tl.zoom_iteration {
        Some(i) if has_power => {
            format!("Inference {i}, kernel by kernel: colour = layer type, height = attributed average power")
        }
        Some(i) => format!("Inference {i}, kernel by kernel, coloured by layer type (no power data)"),
        None => "No kernels in the analysed window".to_string(),
    };
    let body = svg((WIDTH, 300), |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..span_us, 0f64..ymax)?;
        chart
            .configure_mesh()
            .x_desc("µs since the inference's first kernel")
            .y_desc(if has_power { "W" } else { "" })
            .label_style((FONT, 12))
            .draw()?;
        for ty in LayerType::ALL {
            let c = type_color(ty);
            let of: Vec<_> = spans.iter().filter(|s| s.layer_type == ty).collect();
            if of.is_empty() {
                continue;
            }
            chart
                .draw_series(of.into_iter().map(|s| {
                    let x0 = (s.start_ns - t0) as f64 * 1e-3;
                    let h = if has_power { s.power_w.max(0.0) } else { 1.0 };
                    Rectangle::new([(x0, 0.0), (x0 + s.duration_ns as f64 * 1e-3, h)], c.filled())
                }))?
                .label(ty.name())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, 12))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })?;
    Ok((body, caption))
}

fn type_shares(a: &Analysis) -> Result<(String, String), DynErr> {
    let types = &a.figures.types;
    let n = types.len().max(1);
    let caption = if a.energy {
        "Share of layer energy (dark) and GPU time (light) by layer type".to_string()
    } else {
        "Share of GPU time by layer type (no power data)".to_string()
    };
    let body = svg((WIDTH, 60 + 44 * n as u32), |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(90)
            .build_cartesian_2d(0f64..100f64, (0..n as i32 - 1).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => {
                    flip(n, *i).and_then(|j| types.get(j)).map(|t| t.layer_type.name().to_string()).unwrap_or_default()
                }
                _ => String::new(),
            })
            .x_desc("% of the summed layer figures")
            .label_style((FONT, 12))
            .draw()?;
        // Each segment holds two bars: energy (upper half) and time (lower half).
        for (i, t) in types.iter().enumerate() {
            let c = type_color(t.layer_type);
            let i = (n - 1 - i) as i32;
            let e = if a.energy { t.energy_share * 100.0 } else { 0.0 };
            let tm = t.time_share * 100.0;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, SegmentValue::Exact(i)), (tm, SegmentValue::CenterOf(i))],
                c.mix(0.4).filled(),
            )))?;
            if a.energy {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(0.0, SegmentValue::CenterOf(i)), (e, SegmentValue::Exact(i + 1))],
                    c.filled(),
                )))?;
            }
            let label = if a.energy { format!("{e:.1}% energy, {tm:.1}% time") } else { format!("{tm:.1}% time") };
            chart.draw_series(std::iter::once(Text::new(
                label,
                // Right of the bars, or inside them when they fill most of the width.
                (if e.max(tm) > 70.0 { 2.0 } else { e.max(tm) + 1.0 }, SegmentValue::CenterOf(i)),
                (FONT, 12),
            )))?;
        }
        Ok(())
    })?;
    Ok((body, caption))
}

fn roofline(a: &Analysis) -> Result<(String, String), DynErr> {
    let pts: Vec<(f64, f64, &crate::energy::figures::LayerFigures)> = a
        .figures
        .layers
        .iter()
        .filter_map(|l| {
            let y = if a.energy { l.gflop_per_j } else { l.gflop_per_s };
            match (l.arithmetic_intensity, y) {
                (Some(x), Some(y)) if x > 0.0 && y > 0.0 && x.is_finite() && y.is_finite() => Some((x, y, l)),
                _ => None,
            }
        })
        .collect();
    let (ylabel, caption) = if a.energy {
        ("GFLOP/J", "Energy efficiency (GFLOP/J) against arithmetic intensity (FLOP/byte), per layer")
    } else {
        ("GFLOP/s", "Throughput (GFLOP/s) against arithmetic intensity (FLOP/byte), per layer — no power data")
    };
    let bounds = |f: &dyn Fn(&(f64, f64, &crate::energy::figures::LayerFigures)) -> f64| {
        let lo = pts.iter().map(f).fold(f64::INFINITY, f64::min);
        let hi = pts.iter().map(f).fold(0.0, f64::max);
        if pts.is_empty() {
            (0.1, 10.0)
        } else {
            (10f64.powf(lo.log10().floor()), 10f64.powf((hi.log10() + 1e-9).ceil()))
        }
    };
    let (x0, x1) = bounds(&|p| p.0);
    let (y0, y1) = bounds(&|p| p.1);
    // Label the layers that use the most energy (or time), so the chart reads alone.
    let mut top: Vec<usize> = (0..pts.len()).collect();
    let key = |i: &usize| {
        let l = pts[*i].2;
        if a.energy {
            l.energy_mj.value
        } else {
            l.time_ms.value
        }
    };
    top.sort_by(|i, j| key(j).total_cmp(&key(i)));
    top.truncate(5);
    let body = svg((WIDTH, 460), |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("arithmetic intensity (FLOP/byte)")
            .y_desc(ylabel)
            .label_style((FONT, 12))
            .draw()?;
        for ty in LayerType::ALL {
            let c = type_color(ty);
            let of: Vec<_> = pts.iter().filter(|p| p.2.layer_type == ty).collect();
            if of.is_empty() {
                continue;
            }
            chart
                .draw_series(of.iter().map(|p| Circle::new((p.0, p.1), 5, c.filled())))?
                .label(ty.name())
                .legend(move |(x, y)| Circle::new((x + 5, y), 5, c.filled()));
        }
        chart.draw_series(top.iter().map(|&i| {
            let p = &pts[i];
            Text::new(p.2.name.clone(), (p.0 * 1.08, p.1), (FONT, 11))
        }))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FONT, 12))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })?;
    Ok((body, caption.to_string()))
}

const STYLE: &str = r#"
body { font-family: sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table.data { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
table.data th, table.data td { border: 1px solid #ccc; padding: 2px 6px; }
table.data th { background: #f0f0f0; cursor: pointer; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure.chart { margin: 1em 0; } figure.chart svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #444; }
dl.setting { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; font-size: 0.9em; }
dl.setting dt { color: #666; } dl.setting dd { margin: 0; }
.note { background: #fff6d6; border-left: 4px solid #e0b000; padding: 4px 8px; margin: 4px 0; }
"#;

/// Sortable tables (click a header) and a readiness mark the browser test checks:
/// `data-charts` = the number of charts with an SVG inside.
const SCRIPT: &str = r#"
(function () {
  document.querySelectorAll('table.data').forEach(function (table) {
    table.querySelectorAll('th').forEach(function (th, col) {
      th.addEventListener('click', function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var dir = th.dataset.dir === 'desc' ? 1 : -1;
        th.dataset.dir = dir === 1 ? 'asc' : 'desc';
        rows.sort(function (a, b) {
          var x = a.cells[col], y = b.cells[col];
          var u = x.dataset.v, v = y.dataset.v;
          if (u !== undefined && v !== undefined) { return dir * (parseFloat(u) - parseFloat(v)); }
          return dir * x.textContent.localeCompare(y.textContent);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  var charts = document.querySelectorAll('figure.chart svg').length;
  document.body.setAttribute('data-charts', String(charts));
})();
"#;

/// Writes the self-contained HTML report.
pub fn report<W: Write>(a: &Analysis, sort: Sort, mut out: W) -> io::Result<()> {
    let h = &a.header;
    let title = format!(
        "cnnergy report: {} batch {} {} on {}",
        h.workload.model, h.workload.batch_size, h.workload.dtype, h.device.name
    );
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        html_escape(&title),
        html_escape(&title)
    );
    let _ = writeln!(s, "<p>Trace <code>{}</code></p>", html_escape(&a.source));
    for n in &a.notes {
        let _ = writeln!(s, "<p class=\"note\">{}</p>", html_escape(n));
    }
    s.push_str("<dl class=\"setting\">\n");
    for (k, v) in a.setting() {
        let _ = writeln!(s, "<dt>{}</dt><dd>{}</dd>", html_escape(k), html_escape(&v));
    }
    s.push_str("</dl>\n<h2>Model</h2>\n");
    s.push_str(&model_table(a).to_html());
    let charts: [(&str, Chart); 5] = [
        (CHARTS[0], energy_layers),
        (CHARTS[1], power),
        (CHARTS[2], inference),
        (CHARTS[3], type_shares),
        (CHARTS[4], roofline),
    ];
    s.push_str("<h2>Charts</h2>\n");
    for (id, f) in charts {
        let (svg, caption) = f(a).map_err(|e| io::Error::other(format!("drawing {id}: {e}")))?;
        let _ = write!(
            s,
            "<figure class=\"chart\" id=\"{id}\">\n{svg}\n<figcaption>{}</figcaption>\n</figure>\n",
            html_escape(&caption)
        );
    }
    let tables: [(&str, Tab); 3] =
        [("Layers", layer_table(a, sort)), ("Layer types", type_table(a, sort)), ("Kernels", kernel_table(a, sort))];
    for (title, t) in tables {
        let _ = write!(s, "<h2>{title}</h2>\n{}", t.to_html());
    }
    let _ = write!(s, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    out.write_all(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_row_bar_chart_draws() {
        // One layer / one type: the segmented axis is 0..=0.
        let n = 1usize;
        let s = svg((300, 100), |root| {
            let mut chart = ChartBuilder::on(&root)
                .y_label_area_size(40)
                .build_cartesian_2d(0f64..1f64, (0..n as i32 - 1).into_segmented())?;
            chart.configure_mesh().y_labels(n).draw()?;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, SegmentValue::Exact(0)), (0.5, SegmentValue::Exact(1))],
                BLUE.filled(),
            )))?;
            Ok(())
        })
        .unwrap();
        assert!(s.contains("<rect"), "{s}");
        assert_eq!(flip(1, 0), Some(0));
        assert_eq!(flip(3, 0), Some(2));
        assert_eq!(flip(3, 3), None);
        assert_eq!(flip(3, -1), None);
    }
}
