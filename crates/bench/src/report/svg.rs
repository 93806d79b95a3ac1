//! Small inline SVG charts drawn by hand: horizontal bars, box plots and
//! lines.

use std::fmt::Write;

use super::html::escape;

/// One bar: its label, its value and the text printed after it.
pub struct Bar {
    /// Left label.
    pub label: String,
    /// Value; bars scale from `min(0, values)` to `max`.
    pub value: f64,
    /// Shown right of the bar (e.g. `75.0% (3/4)`).
    pub text: String,
}

const WIDTH: f64 = 640.0;
const LABEL_W: f64 = 200.0;
const TEXT_W: f64 = 150.0;
const ROW_H: f64 = 22.0;
const PLOT_W: f64 = WIDTH - LABEL_W - TEXT_W;

/// The frame every chart here shares: a titled `<svg>` with one row per
/// item, each labelled on the left by `label`; `plot` draws the rest of a
/// row, whose top edge is at `y`.
fn frame<T>(
    title: &str,
    items: &[T],
    label: impl Fn(&T) -> &str,
    mut plot: impl FnMut(&mut String, &T, f64),
) -> String {
    let height = 28.0 + ROW_H * items.len() as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img"><title>{t}</title><text x="0" y="16" class="ct">{t}</text>"#,
        t = escape(title)
    );
    for (i, item) in items.iter().enumerate() {
        let y = 24.0 + ROW_H * i as f64;
        let _ = write!(
            s,
            r#"<text x="{lx}" y="{ty}" class="cl">{label}</text>"#,
            lx = LABEL_W - 6.0,
            ty = y + 14.0,
            label = escape(label(item))
        );
        plot(&mut s, item, y);
    }
    s.push_str("</svg>");
    s
}

/// A horizontal bar chart; `max` fixes the scale (e.g. 100 for percents).
pub fn bars(title: &str, bars: &[Bar], max: f64) -> String {
    let min = bars.iter().map(|b| b.value).fold(0.0, f64::min);
    let max = bars.iter().map(|b| b.value).fold(max, f64::max);
    let span = (max - min).max(1e-9);
    let x = |v: f64| LABEL_W + (v - min) / span * PLOT_W;
    frame(
        title,
        bars,
        |b| &b.label,
        |s, b, y| {
            let (x0, x1) = (x(0.0_f64.max(min)), x(b.value));
            let (left, w) = if x1 >= x0 {
                (x0, x1 - x0)
            } else {
                (x1, x0 - x1)
            };
            let class = if b.value < 0.0 { "neg" } else { "pos" };
            let _ = write!(
                s,
                r#"<rect x="{left:.1}" y="{y:.1}" width="{w:.1}" height="{bh}" class="{class}"/><text x="{tx}" y="{ty}" class="cv">{text}</text>"#,
                ty = y + 14.0,
                bh = ROW_H - 6.0,
                tx = WIDTH - TEXT_W + 6.0,
                text = escape(&b.text),
            );
        },
    )
}

/// One distribution: its label and its values.
pub struct Distribution {
    /// Left label.
    pub label: String,
    /// The values (any order).
    pub values: Vec<f64>,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Box plots (min, quartiles, median, max) on a shared linear scale.
pub fn boxes(title: &str, unit: &str, dists: &[Distribution]) -> String {
    let max = dists
        .iter()
        .flat_map(|d| d.values.iter().copied())
        .fold(0.0, f64::max)
        .max(1e-9);
    let x = |v: f64| LABEL_W + v / max * PLOT_W;
    frame(
        title,
        dists,
        |d| &d.label,
        |s, d, y| {
            if d.values.is_empty() {
                return;
            }
            let mid = y + (ROW_H - 6.0) / 2.0;
            let mut v = d.values.clone();
            v.sort_by(f64::total_cmp);
            let (lo, q1, med, q3, hi) = (
                v[0],
                quantile(&v, 0.25),
                quantile(&v, 0.5),
                quantile(&v, 0.75),
                v[v.len() - 1],
            );
            let _ = write!(
                s,
                r#"<line x1="{a:.1}" y1="{mid:.1}" x2="{b:.1}" y2="{mid:.1}" class="wh"/><rect x="{c:.1}" y="{y:.1}" width="{w:.1}" height="{bh}" class="box"/><line x1="{m:.1}" y1="{y:.1}" x2="{m:.1}" y2="{y2:.1}" class="med"/><text x="{tx}" y="{ty}" class="cv">median {med:.1} {unit} (n={n})</text>"#,
                a = x(lo),
                b = x(hi),
                c = x(q1),
                w = (x(q3) - x(q1)).max(1.0),
                bh = ROW_H - 6.0,
                m = x(med),
                y2 = y + ROW_H - 6.0,
                tx = WIDTH - TEXT_W + 6.0,
                ty = y + 14.0,
                unit = escape(unit),
                n = v.len(),
            );
        },
    )
}

/// One line of a line chart: its label and its (x, y) points, drawn in
/// the order given.
pub struct Series {
    /// The legend's label.
    pub label: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

const LINE_H: f64 = 240.0;
const PALETTE: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

/// A line chart of y in percent (0 to 100) against `x_label`, from 0 to
/// the largest x, one coloured line with dots per series and a legend.
pub fn lines(title: &str, x_label: &str, series: &[Series]) -> String {
    let (left, top, plot_w) = (48.0, 28.0, WIDTH - 48.0 - 130.0);
    let plot_h = LINE_H - top - 36.0;
    let max_x = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.0)
        .fold(0.0, f64::max)
        .max(1e-9);
    let x = |v: f64| left + v / max_x * plot_w;
    let y = |v: f64| top + plot_h - v.clamp(0.0, 100.0) / 100.0 * plot_h;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {LINE_H}" width="{WIDTH}" height="{LINE_H}" role="img"><title>{t}</title><text x="0" y="16" class="ct">{t}</text>"#,
        t = escape(title)
    );
    let _ = write!(
        s,
        r##"<line x1="{left}" y1="{b}" x2="{r}" y2="{b}" stroke="#888"/><line x1="{left}" y1="{top}" x2="{left}" y2="{b}" stroke="#888"/><text x="{left}" y="{bl}" class="cl" text-anchor="start">0</text><text x="{r}" y="{bl}" class="cl">{mx:.0} {xl}</text><text x="{yl}" y="{tt}" class="cl">100%</text><text x="{yl}" y="{b}" class="cl">0%</text>"##,
        b = top + plot_h,
        r = left + plot_w,
        bl = top + plot_h + 16.0,
        mx = max_x,
        xl = escape(x_label),
        yl = left - 4.0,
        tt = top + 10.0,
    );
    for (i, line) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let path: Vec<String> = line
            .points
            .iter()
            .map(|&(px, py)| format!("{:.1},{:.1}", x(px), y(py)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for &(px, py) in &line.points {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"><title>{}: {py:.1}% at {px:.0}</title></circle>"#,
                x(px),
                y(py),
                escape(&line.label)
            );
        }
        let _ = write!(
            s,
            r#"<text x="{lx}" y="{ly}" fill="{colour}" class="cv">{label}</text>"#,
            lx = left + plot_w + 12.0,
            ly = top + 14.0 + 18.0 * i as f64,
            label = escape(&line.label)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_and_escape() {
        let svg = bars(
            "pass <rate>",
            &[
                Bar {
                    label: "a&b".into(),
                    value: 50.0,
                    text: "50%".into(),
                },
                Bar {
                    label: "c".into(),
                    value: -20.0,
                    text: "-20".into(),
                },
            ],
            100.0,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("pass &lt;rate&gt;") && svg.contains("a&amp;b"));
        // Scale -20..100 over 290 px: zero at 200 + 20/120*290.
        assert!(svg.contains(r#"x="248.3" y="24.0" width="120.8""#), "{svg}");
        assert!(svg.contains(r#"class="neg""#));
    }

    #[test]
    fn quartiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!((quantile(&v, 0.25), quantile(&v, 0.5)), (2.0, 3.0));
        let svg = boxes(
            "wall",
            "s",
            &[Distribution {
                label: "m".into(),
                values: vec![5.0, 1.0, 3.0],
            }],
        );
        assert!(svg.contains("median 3.0 s (n=3)"), "{svg}");
    }
}
