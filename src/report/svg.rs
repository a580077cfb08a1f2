//! Chart primitives as plain SVG strings: line charts (linear or log axes) and horizontal bar
//! charts, with titles, axis labels, ticks and a legend. No dependencies, no scripts, no fonts.
//!
//! Every data mark is a `<path class="data" d="...">`; series and their legend entries share
//! `data-series="i"` so the page's script can hide or show a configuration.

use super::format::{escape_html, format_us};
use std::fmt::Write;

/// Distinct colours (Tableau 10, then darker variants): configuration `i` gets `palette(i)`.
pub(crate) fn palette(i: usize) -> &'static str {
    const COLORS: [&str; 20] = [
        "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
        "#1f4e79", "#b35806", "#9e1b1d", "#2f7f7a", "#2d6b27", "#a68a00", "#6f3e66", "#c2185b", "#5d4037", "#616161",
    ];
    COLORS[i % COLORS.len()]
}

/// Maps values to [0, 1] along an axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Scale {
    Linear {
        min: f64,
        max: f64,
    },
    /// Base-10 logarithmic; values at or below 0 are clamped to `min`.
    Log {
        min: f64,
        max: f64,
    },
}

impl Scale {
    pub(crate) fn unit(&self, v: f64) -> f64 {
        let t = match *self {
            Scale::Linear { min, max } => (v - min) / (max - min),
            Scale::Log { min, max } => (v.max(min).log10() - min.log10()) / (max.log10() - min.log10()),
        };
        if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 }
    }
}

pub(crate) struct Axis {
    /// With the unit: `latency (ms, log scale)`.
    pub label: String,
    pub scale: Scale,
    pub ticks: Vec<(f64, String)>,
}

pub(crate) struct Series {
    pub name: String,
    pub color: &'static str,
    /// Solid when 0; other values give distinct dash patterns (repeats of one configuration).
    pub dash: usize,
    pub points: Vec<(f64, f64)>,
}

/// A `stroke-dasharray` attribute for dash pattern `k` (none for 0).
fn dash_attr(k: usize) -> &'static str {
    const PATTERNS: [&str; 4] = [
        "",
        r#" stroke-dasharray="7 3""#,
        r#" stroke-dasharray="2 2""#,
        r#" stroke-dasharray="8 3 2 3""#,
    ];
    PATTERNS[k % PATTERNS.len()]
}

pub(crate) struct LineChart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
}

const WIDTH: f64 = 760.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 42.0;
const LEGEND_ROW: f64 = 18.0;

impl LineChart {
    pub(crate) fn to_svg(&self) -> String {
        let plot_h = 260.0;
        let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, TOP, TOP + plot_h);
        let legend_top = y1 + 52.0;
        let height = legend_top + legend_height(self.series.len()) + 6.0;
        let mut svg = open(&self.title, height);
        for (v, label) in &self.y.ticks {
            let y = y1 - self.y.scale.unit(*v) * plot_h;
            let _ = write!(
                svg,
                r##"<path class="grid" stroke="#e3e3e3" d="M{x0:.1} {y:.1}H{x1:.1}"/>"##
            );
            svg.push_str(&text(x0 - 6.0, y + 4.0, "end", "tick", label));
        }
        for (v, label) in &self.x.ticks {
            let x = x0 + self.x.scale.unit(*v) * (x1 - x0);
            let _ = write!(
                svg,
                r##"<path class="grid" stroke="#e3e3e3" d="M{x:.1} {y0:.1}V{y1:.1}"/>"##
            );
            svg.push_str(&text(x, y1 + 16.0, "middle", "tick", label));
        }
        let _ = write!(
            svg,
            r##"<path class="axis" stroke="#333" fill="none" d="M{x0:.1} {y0:.1}V{y1:.1}H{x1:.1}"/>"##
        );
        svg.push_str(&text((x0 + x1) / 2.0, y1 + 36.0, "middle", "label", &self.x.label));
        svg.push_str(&vertical_label(16.0, (y0 + y1) / 2.0, &self.y.label));
        for (i, s) in self.series.iter().enumerate() {
            let d = polyline(s.points.iter().map(|&(x, y)| {
                (
                    x0 + self.x.scale.unit(x) * (x1 - x0),
                    y1 - self.y.scale.unit(y) * plot_h,
                )
            }));
            let _ = write!(
                svg,
                r##"<path class="data line" data-series="{i}" fill="none" stroke-width="1.8" stroke="{}"{} d="{d}"><title>{}</title></path>"##,
                s.color,
                dash_attr(s.dash),
                escape_html(&s.name)
            );
        }
        svg.push_str(&legend(
            self.series.iter().map(|s| (s.name.as_str(), s.color, s.dash)),
            legend_top,
        ));
        svg.push_str("</svg>\n");
        svg
    }
}

/// One horizontal bar: stacked segments (one per kind), an optional min–max whisker, a label
/// at its end.
pub(crate) struct Bar {
    pub label: String,
    pub segments: Vec<f64>,
    pub range: Option<(f64, f64)>,
    pub value_text: String,
}

pub(crate) struct BarChart {
    pub title: String,
    pub value_label: String,
    pub bars: Vec<Bar>,
    /// One colour per bar (single-segment bars), or per segment kind with `segment_names`.
    pub colors: Vec<&'static str>,
    /// Names of the stacked kinds, shown in a legend; empty for single-segment bars.
    pub segment_names: Vec<String>,
    pub format: fn(f64) -> String,
    /// The value axis reaches at least this far (5 keeps count ticks whole).
    pub min_extent: f64,
}

const BAR_H: f64 = 18.0;
const BAR_GAP: f64 = 8.0;

impl BarChart {
    pub(crate) fn to_svg(&self) -> String {
        let longest = self.bars.iter().map(|b| b.label.chars().count()).max().unwrap_or(0);
        let x0 = (longest as f64 * 6.4 + 16.0).clamp(80.0, 330.0);
        let x1 = WIDTH - RIGHT - 70.0;
        let (y0, y1) = (TOP, TOP + self.bars.len() as f64 * (BAR_H + BAR_GAP) + BAR_GAP);
        let legend_top = y1 + 52.0;
        let height = legend_top + legend_height(self.segment_names.len()) + 6.0;
        let mut svg = open(&self.title, height);
        let top = self.bars.iter().map(bar_extent).fold(0.0, f64::max);
        let ticks = linear_ticks(0.0, top.max(self.min_extent).max(f64::MIN_POSITIVE), self.format);
        let scale = Scale::Linear {
            min: 0.0,
            max: ticks.last().map_or(1.0, |t| t.0),
        };
        let x_of = |v: f64| x0 + scale.unit(v) * (x1 - x0);
        for (v, label) in &ticks {
            let x = x_of(*v);
            let _ = write!(
                svg,
                r##"<path class="grid" stroke="#e3e3e3" d="M{x:.1} {y0:.1}V{y1:.1}"/>"##
            );
            svg.push_str(&text(x, y1 + 16.0, "middle", "tick", label));
        }
        for (i, bar) in self.bars.iter().enumerate() {
            let y = y0 + BAR_GAP + i as f64 * (BAR_H + BAR_GAP);
            svg.push_str(&text(x0 - 6.0, y + BAR_H / 2.0 + 4.0, "end", "tick", &bar.label));
            svg.push_str(&self.bar_marks(i, bar, y, &x_of));
        }
        let _ = write!(
            svg,
            r##"<path class="axis" stroke="#333" fill="none" d="M{x0:.1} {y0:.1}V{y1:.1}H{x1:.1}"/>"##
        );
        svg.push_str(&text((x0 + x1) / 2.0, y1 + 36.0, "middle", "label", &self.value_label));
        let names = self.segment_names.iter().map(String::as_str);
        svg.push_str(&legend(
            names.zip(self.colors.iter().copied()).map(|(n, c)| (n, c, 0)),
            legend_top,
        ));
        svg.push_str("</svg>\n");
        svg
    }

    fn bar_marks(&self, i: usize, bar: &Bar, y: f64, x_of: &dyn Fn(f64) -> f64) -> String {
        let mut out = String::new();
        let mut start = 0.0;
        for (k, value) in bar.segments.iter().enumerate() {
            // Stacked kinds share their legend entry's `data-series`; single bars their row's.
            let (series, color) = if self.segment_names.is_empty() {
                (i, self.colors[i % self.colors.len()])
            } else {
                (k, self.colors[k])
            };
            let (a, b) = (x_of(start), x_of(start + value));
            let _ = write!(
                out,
                r##"<path class="data bar" data-series="{series}" fill="{color}" d="M{a:.1} {y:.1}H{b:.1}V{:.1}H{a:.1}Z"><title>{}: {}</title></path>"##,
                y + BAR_H,
                escape_html(&bar.label),
                escape_html(&(self.format)(*value))
            );
            start += value;
        }
        let mut end = x_of(start);
        if let Some((lo, hi)) = bar.range {
            let (a, b, mid) = (x_of(lo), x_of(hi), y + BAR_H / 2.0);
            let _ = write!(
                out,
                r##"<path class="whisker" stroke="#222" fill="none" d="M{a:.1} {mid:.1}H{b:.1}M{a:.1} {:.1}V{:.1}M{b:.1} {:.1}V{:.1}"/>"##,
                y + 4.0,
                y + BAR_H - 4.0,
                y + 4.0,
                y + BAR_H - 4.0
            );
            end = end.max(b);
        }
        out.push_str(&text(
            end + 5.0,
            y + BAR_H / 2.0 + 4.0,
            "start",
            "value",
            &bar.value_text,
        ));
        out
    }
}

fn bar_extent(bar: &Bar) -> f64 {
    let total: f64 = bar.segments.iter().sum();
    bar.range.map_or(total, |(_, hi)| total.max(hi))
}

fn open(title: &str, height: f64) -> String {
    let title = escape_html(title);
    format!(
        r##"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="11" role="img" aria-label="{title}"><title>{title}</title><text class="title" x="{:.1}" y="24" text-anchor="middle" font-size="14" font-weight="bold">{title}</text>"##,
        WIDTH / 2.0
    )
}

fn text(x: f64, y: f64, anchor: &str, class: &str, content: &str) -> String {
    let size = if class == "label" { r#" font-size="12""# } else { "" };
    format!(
        r##"<text class="{class}" x="{x:.1}" y="{y:.1}" text-anchor="{anchor}"{size}>{}</text>"##,
        escape_html(content)
    )
}

fn vertical_label(x: f64, y: f64, content: &str) -> String {
    format!(
        r##"<text class="label" transform="translate({x:.1} {y:.1}) rotate(-90)" text-anchor="middle" font-size="12">{}</text>"##,
        escape_html(content)
    )
}

fn polyline(points: impl Iterator<Item = (f64, f64)>) -> String {
    let mut d = String::new();
    for (i, (x, y)) in points.enumerate() {
        let _ = write!(d, "{}{x:.1} {y:.1}", if i == 0 { "M" } else { "L" });
    }
    d
}

fn legend_columns(n: usize) -> usize {
    if n > 1 { 2 } else { 1 }
}

fn legend_height(n: usize) -> f64 {
    n.div_ceil(legend_columns(n)) as f64 * LEGEND_ROW
}

/// Entries in columns under the plot; each one toggles its series (`data-series`).
fn legend<'a>(entries: impl Iterator<Item = (&'a str, &'static str, usize)>, top: f64) -> String {
    let entries: Vec<_> = entries.collect();
    let columns = legend_columns(entries.len());
    let rows = entries.len().div_ceil(columns);
    let column_w = (WIDTH - LEFT - RIGHT) / columns as f64;
    let mut out = String::new();
    for (i, (name, color, dash)) in entries.iter().enumerate() {
        let x = LEFT + (i / rows.max(1)) as f64 * column_w;
        let y = top + (i % rows.max(1)) as f64 * LEGEND_ROW;
        let _ = write!(
            out,
            r##"<g class="legend-item" data-series="{i}"><path class="swatch" stroke-width="3" stroke="{color}"{} d="M{x:.1} {:.1}h18"/>{}</g>"##,
            dash_attr(*dash),
            y - 4.0,
            text(x + 24.0, y, "start", "legend", name)
        );
    }
    out
}

/// "Nice" ticks (1, 2, 5 × 10^k steps) covering [min, max].
pub(crate) fn linear_ticks(min: f64, max: f64, format: fn(f64) -> String) -> Vec<(f64, String)> {
    let span = (max - min).max(f64::MIN_POSITIVE);
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (min / step).floor() * step;
    let count = ((max - first) / step).ceil() as usize;
    (0..=count.max(1))
        .map(|k| first + k as f64 * step)
        .map(|v| (v, format(v)))
        .collect()
}

/// Powers of ten covering [min, max] (both > 0), for a log axis.
pub(crate) fn log_ticks(min: f64, max: f64, format: fn(f64) -> String) -> (Scale, Vec<(f64, String)>) {
    let lo = min.max(f64::MIN_POSITIVE).log10().floor() as i32;
    let hi = (max.max(min).log10().ceil() as i32).max(lo + 1);
    let ticks = (lo..=hi).map(|e| 10f64.powi(e)).map(|v| (v, format(v))).collect();
    (
        Scale::Log {
            min: 10f64.powi(lo),
            max: 10f64.powi(hi),
        },
        ticks,
    )
}

/// Position of a quantile on an HDR "nines" axis: 0 → 0, 0.9 → 1, 0.99 → 2, 0.999 → 3.
pub(crate) fn nines(quantile: f64) -> f64 {
    -(1.0 - quantile).max(1e-12).log10()
}

/// Ticks 0%, 50%, 90%, 99%, 99.9%... up to `max_nines`.
pub(crate) fn nines_ticks(max_nines: f64) -> Vec<(f64, String)> {
    let mut ticks = vec![(0.0, "0%".to_string()), (nines(0.5), "50%".to_string())];
    for k in 1..=max_nines.ceil().max(1.0) as i32 {
        let percent = 100.0 - 100.0 / 10f64.powi(k);
        let decimals = (k - 2).max(0) as usize;
        ticks.push((k as f64, format!("{percent:.decimals$}%")));
    }
    ticks
}

pub(crate) fn figure(id: &str, svg: &str) -> String {
    format!("<figure class=\"chart\" id=\"chart-{id}\">\n{svg}</figure>\n")
}

/// The smallest positive and the largest y of all series (1, 10 when there are none).
pub(crate) fn value_range(series: &[Series]) -> (f64, f64) {
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let lo = ys.clone().filter(|y| *y > 0.0).fold(f64::INFINITY, f64::min);
    let hi = ys.fold(0.0, f64::max);
    if lo.is_finite() { (lo, hi.max(lo)) } else { (1.0, 10.0) }
}

/// A latency tick label without trailing zeros: `100ms`, `1s`, `0.1µs`.
pub(crate) fn tick_us(us: f64) -> String {
    let text = format_us(us);
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number = if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    };
    format!("{number}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(v: f64) -> String {
        format!("{v}")
    }

    #[test]
    fn scales_map_to_unit_interval() {
        let lin = Scale::Linear { min: 0.0, max: 10.0 };
        assert_eq!(lin.unit(5.0), 0.5);
        assert_eq!(lin.unit(20.0), 1.0);
        let log = Scale::Log { min: 1.0, max: 1000.0 };
        assert!((log.unit(10.0) - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(log.unit(0.0), 0.0);
    }

    #[test]
    fn ticks_are_round() {
        let t: Vec<f64> = linear_ticks(0.0, 9300.0, plain).iter().map(|t| t.0).collect();
        assert_eq!(t, vec![0.0, 2000.0, 4000.0, 6000.0, 8000.0, 10000.0]);
        let (scale, t) = log_ticks(3.2, 4100.0, plain);
        assert_eq!(scale, Scale::Log { min: 1.0, max: 10000.0 });
        assert_eq!(t.len(), 5);
        let labels: Vec<String> = nines_ticks(3.0).into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["0%", "50%", "90%", "99%", "99.9%"]);
        assert!((nines(0.999) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn line_chart_has_title_axes_legend_and_one_path_per_series() {
        let chart = LineChart {
            title: "t <1>".into(),
            x: Axis {
                label: "x (s)".into(),
                scale: Scale::Linear { min: 0.0, max: 2.0 },
                ticks: linear_ticks(0.0, 2.0, plain),
            },
            y: Axis {
                label: "y (µs, log scale)".into(),
                scale: Scale::Log { min: 1.0, max: 100.0 },
                ticks: vec![(1.0, "1".into()), (100.0, "100".into())],
            },
            series: vec![
                Series {
                    name: "a".into(),
                    color: palette(0),
                    dash: 0,
                    points: vec![(0.0, 1.0), (2.0, 100.0)],
                },
                Series {
                    name: "b".into(),
                    color: palette(1),
                    dash: 1,
                    points: vec![(0.0, 5.0), (1.0, 50.0)],
                },
            ],
        };
        let svg = chart.to_svg();
        assert!(svg.contains("<title>t &lt;1&gt;</title>"));
        assert!(svg.contains(">x (s)</text>") && svg.contains(">y (µs, log scale)</text>"));
        assert_eq!(svg.matches(r#"class="data line""#).count(), 2);
        assert!(svg.contains(r#"d="M78.0 302.0L736.0 42.0""#), "{svg}");
        assert_eq!(svg.matches(r#"class="legend-item""#).count(), 2);
        assert_eq!(
            svg.matches("stroke-dasharray=\"7 3\"").count(),
            2,
            "series b and its legend swatch"
        );
    }

    #[test]
    fn bar_chart_stacks_segments_and_draws_whiskers() {
        let chart = BarChart {
            title: "errors".into(),
            value_label: "errors (count)".into(),
            bars: vec![Bar {
                label: "wal".into(),
                segments: vec![2.0, 3.0],
                range: Some((1.0, 6.0)),
                value_text: "5".into(),
            }],
            colors: vec![palette(0), palette(1)],
            segment_names: vec!["busy".into(), "locked".into()],
            format: plain,
            min_extent: 5.0,
        };
        let svg = chart.to_svg();
        assert_eq!(svg.matches(r#"class="data bar""#).count(), 2);
        assert!(svg.contains(r#"class="whisker""#));
        assert!(svg.contains(">busy</text>") && svg.contains(">locked</text>"));
        let ticks: Vec<&str> = svg
            .split("class=\"tick\"")
            .skip(1)
            .filter_map(|t| t.split(['>', '<']).nth(1))
            .collect();
        assert_eq!(ticks, ["0", "2", "4", "6", "wal"], "whole ticks covering the whisker");
        assert!(
            svg.contains(r##"data-series="1" fill="#f28e2b""##),
            "a kind's segments toggle with its legend entry"
        );
    }
}
