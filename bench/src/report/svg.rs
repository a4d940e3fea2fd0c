//! Dependency-free SVG plots for the report: grouped bars (rates per path) and lines
//! (latency percentile curves). Plain SVG 1.1 text, readable in any browser or on GitHub.

use std::fmt::Write;

const W: f64 = 760.0;
const H: f64 = 400.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 180.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 90.0;
/// Bar charts with more groups than this slant their labels.
const ROTATE_LABELS_ABOVE: usize = 6;
/// Series colours (colour-blind safe, Okabe–Ito).
const COLOURS: [&str; 8] =
    ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"];

/// A named series of values, one per category (bars) or (x, y) points (lines).
#[derive(Debug, Clone)]
pub struct Series<T> {
    /// Legend text.
    pub name: String,
    /// The values.
    pub values: Vec<T>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn header(out: &mut String, title: &str, y_label: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="{W}" height="{H}" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>
<text transform="translate(16,{}) rotate(-90)" text-anchor="middle">{}</text>
"#,
        LEFT + (W - LEFT - RIGHT) / 2.0,
        escape(title),
        TOP + (H - TOP - BOTTOM) / 2.0,
        escape(y_label)
    );
}

fn legend(out: &mut String, names: &[&str]) {
    for (i, name) in names.iter().enumerate() {
        let y = TOP + 10.0 + i as f64 * 20.0;
        let x = W - RIGHT + 15.0;
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            y - 10.0,
            COLOURS[i % COLOURS.len()],
            x + 18.0,
            y,
            escape(name)
        );
    }
}

/// A "nice" upper bound for an axis from 0 to `max`, and its tick step.
fn nice_axis(max: f64) -> (f64, f64) {
    if !(max.is_finite() && max > 0.0) {
        return (1.0, 0.25);
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

fn number(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Horizontal grid lines with labels every `step` from 0 to `top`; `y_of` maps a value to y.
fn y_grid(out: &mut String, top: f64, step: f64, y_of: impl Fn(f64) -> f64) {
    let mut t = 0.0;
    while t <= top + step / 2.0 {
        let y = y_of(t);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            number(t)
        );
        t += step;
    }
}

/// Grouped vertical bars: one group per category, one bar per series.
pub fn bars(title: &str, y_label: &str, categories: &[String], series: &[Series<f64>]) -> String {
    let mut out = String::new();
    header(&mut out, title, y_label);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let max =
        series.iter().flat_map(|s| s.values.iter().copied()).filter(|v| v.is_finite()).fold(0.0, f64::max);
    let (top, step) = nice_axis(max);
    let y_of = |v: f64| TOP + ph - (v / top) * ph;
    y_grid(&mut out, top, step, y_of);
    let groups = categories.len().max(1) as f64;
    let group_w = pw / groups;
    let bar_w = (group_w * 0.8) / series.len().max(1) as f64;
    for (c, cat) in categories.iter().enumerate() {
        let gx = LEFT + c as f64 * group_w + group_w * 0.1;
        for (s, ser) in series.iter().enumerate() {
            let Some(&v) = ser.values.get(c) else { continue };
            if !v.is_finite() {
                continue;
            }
            let (x, y) = (gx + s as f64 * bar_w, y_of(v));
            let _ = writeln!(
                out,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {}</title></rect>"#,
                (bar_w - 1.0).max(1.0),
                TOP + ph - y,
                COLOURS[s % COLOURS.len()],
                escape(&format!("{} {cat}", ser.name)),
                number(v)
            );
        }
        let (x, y) = (gx + group_w * 0.4, TOP + ph + 16.0);
        if categories.len() > ROTATE_LABELS_ABOVE {
            // Many groups: slanted labels so neighbours do not overlap.
            let _ = writeln!(
                out,
                r#"<text x="{x:.1}" y="{y}" text-anchor="end" font-size="10" transform="rotate(-35 {x:.1} {y})">{}</text>"#,
                escape(cat)
            );
        } else {
            let _ = writeln!(out, r#"<text x="{x:.1}" y="{y}" text-anchor="middle">{}</text>"#, escape(cat));
        }
    }
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{}" stroke="#333"/><line x1="{LEFT}" x2="{}" y1="{}" y2="{}" stroke="#333"/>"##,
        TOP + ph,
        LEFT + pw,
        TOP + ph,
        TOP + ph
    );
    legend(&mut out, &series.iter().map(|s| s.name.as_str()).collect::<Vec<_>>());
    out.push_str("</svg>\n");
    out
}

/// Where percentile `p` (0..100) sits on a "nines" axis: 0 at p50, then one unit per nine
/// (p90 → p99 → p99.9 evenly spaced), so the tail gets the room it deserves.
pub fn nines(p: f64) -> f64 {
    let tail = (1.0 - p / 100.0).max(1e-7);
    (0.5 / tail).log10()
}

/// Latency percentile curves: x = percentile on a "nines" scale (p50, p90, p99, p99.9, …),
/// y = latency in µs on a linear axis from 0. Points are (percentile 0..100, µs).
pub fn percentile_curves(title: &str, series: &[Series<(f64, f64)>]) -> String {
    let mut out = String::new();
    header(&mut out, title, "latency (µs)");
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let ticks = [50.0, 90.0, 99.0, 99.9, 99.99];
    let pts = || {
        series.iter().flat_map(|s| s.values.iter().copied()).filter(|(p, v)| p.is_finite() && v.is_finite())
    };
    let x_max = pts().map(|(p, _)| nines(p)).fold(nines(99.9), f64::max);
    let x_min = nines(50.0).min(pts().map(|(p, _)| nines(p)).fold(f64::INFINITY, f64::min));
    let (top, step) = nice_axis(pts().map(|(_, v)| v).fold(0.0, f64::max));
    let x_of = |p: f64| LEFT + (nines(p) - x_min) / (x_max - x_min).max(1e-9) * pw;
    let y_of = |v: f64| TOP + ph - (v / top) * ph;
    y_grid(&mut out, top, step, y_of);
    for p in ticks.into_iter().filter(|p| nines(*p) <= x_max + 1e-9) {
        let x = x_of(p);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">p{}</text>"##,
            TOP + ph,
            TOP + ph + 18.0,
            p
        );
    }
    for (i, s) in series.iter().enumerate() {
        let path: Vec<String> = s
            .values
            .iter()
            .filter(|(p, v)| p.is_finite() && v.is_finite() && nines(*p) >= x_min)
            .map(|&(p, v)| format!("{:.1},{:.1}", x_of(p), y_of(v)))
            .collect();
        if path.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
            COLOURS[i % COLOURS.len()],
            path.join(" "),
            escape(&s.name)
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{}" stroke="#333"/><line x1="{LEFT}" x2="{}" y1="{}" y2="{}" stroke="#333"/><text x="{}" y="{}" text-anchor="middle">percentile</text>"##,
        TOP + ph,
        LEFT + pw,
        TOP + ph,
        TOP + ph,
        LEFT + pw / 2.0,
        H - 20.0
    );
    legend(&mut out, &series.iter().map(|s| s.name.as_str()).collect::<Vec<_>>());
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar_heights(svg: &str) -> Vec<f64> {
        svg.lines()
            .filter(|l| l.starts_with("<rect x=") && l.contains("<title>"))
            .map(|l| {
                let h = l.split("height=\"").nth(1).unwrap();
                h[..h.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn bars_are_proportional_to_their_values() {
        let svg = bars(
            "t",
            "Mpps",
            &["a".into(), "b".into()],
            &[
                Series { name: "weft".into(), values: vec![10.0, 5.0] },
                Series { name: "kernel".into(), values: vec![2.5, 0.0] },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let h = bar_heights(&svg);
        assert_eq!(h.len(), 4);
        // Order: a/weft, a/kernel, b/weft, b/kernel.
        assert!((h[0] / h[2] - 2.0).abs() < 0.01, "{h:?}");
        assert!((h[0] / h[1] - 4.0).abs() < 0.01, "{h:?}");
        assert_eq!(h[3], 0.0);
    }

    #[test]
    fn text_is_escaped() {
        let svg =
            bars("a<b & c", "y", &["<x>".into()], &[Series { name: "\"s\"".into(), values: vec![1.0] }]);
        assert!(svg.contains("a&lt;b &amp; c") && svg.contains("&lt;x&gt;") && svg.contains("&quot;s&quot;"));
        assert!(!svg.contains("<x>"));
    }

    #[test]
    fn the_nines_axis_starts_at_p50_and_gives_each_nine_one_unit() {
        let (a, b, c, d) = (nines(50.0), nines(90.0), nines(99.0), nines(99.9));
        assert!(a.abs() < 1e-9);
        assert!((c - b - 1.0).abs() < 1e-9 && (d - c - 1.0).abs() < 1e-9);
    }

    #[test]
    fn percentile_curves_draw_one_line_per_series_and_rise_with_latency() {
        let svg = percentile_curves(
            "lat",
            &[
                Series { name: "weft".into(), values: vec![(50.0, 10.0), (99.0, 20.0), (99.9, 40.0)] },
                Series { name: "kernel".into(), values: vec![(50.0, 15.0), (99.0, 30.0)] },
            ],
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        let first = svg.lines().find(|l| l.starts_with("<polyline")).unwrap();
        let pts: Vec<(f64, f64)> = first
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert!(
            pts.windows(2).all(|w| w[1].0 > w[0].0 && w[1].1 < w[0].1),
            "x grows, y (down) rises: {pts:?}"
        );
    }

    #[test]
    fn empty_or_non_finite_input_still_makes_a_valid_picture() {
        let svg = bars("t", "y", &[], &[]);
        assert!(svg.ends_with("</svg>\n"));
        let svg = percentile_curves("t", &[Series { name: "x".into(), values: vec![(f64::NAN, 1.0)] }]);
        assert!(svg.ends_with("</svg>\n") && !svg.contains("NaN"));
    }
}
