//! Server-rendered SVG charts: one bar per day, optionally stacked. No
//! script and no inline style (the CSP forbids both): colours come from
//! classes in `console.css`, every bar has a `<title>` for hover and screen
//! readers, and the figures are in a table beside each chart anyway.

use maud::{Markup, html};

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 220.0;
const PAD_LEFT: f64 = 44.0;
const PAD_BOTTOM: f64 = 22.0;

/// One segment of a day's bar.
pub(crate) struct Segment {
    pub value: f64,
    pub class: &'static str,
    pub label: String,
}

/// One day.
pub(crate) struct Day {
    pub label: String,
    pub segments: Vec<Segment>,
}

/// A bar chart of `days`, oldest left; `unit` follows the axis maximum.
pub(crate) fn bars(title: &str, days: &[Day], unit: &str) -> Markup {
    let total = |d: &Day| d.segments.iter().map(|s| s.value).sum::<f64>();
    let max = days.iter().map(total).fold(0.0_f64, f64::max);
    let scale = if max > 0.0 {
        (HEIGHT - PAD_BOTTOM - 6.0) / max
    } else {
        0.0
    };
    let slot = (WIDTH - PAD_LEFT) / days.len().max(1) as f64;
    let bar = (slot * 0.7).max(1.0);
    let base = HEIGHT - PAD_BOTTOM;
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(title) {
                title { (title) }
                line.axis x1=(PAD_LEFT) y1=(base) x2=(WIDTH) y2=(base) {}
                text x="2" y="14" { (format_value(max)) " " (unit) }
                text x="2" y=(base) { "0" }
                @for (i, day) in days.iter().enumerate() {
                    @let x = PAD_LEFT + i as f64 * slot + (slot - bar) / 2.0;
                    @let mut top = base;
                    @for segment in &day.segments {
                        @let h = segment.value * scale;
                        @if h > 0.0 {
                            @let y = { top -= h; top };
                            rect class=(format!("bar {}", segment.class)) x=(fmt(x)) y=(fmt(y)) width=(fmt(bar)) height=(fmt(h)) {
                                title { (day.label) ": " (segment.label) }
                            }
                        }
                    }
                    @if i % 7 == 0 || i + 1 == days.len() {
                        text x=(fmt(x)) y=(HEIGHT - 4.0) { (day.label.get(5..).unwrap_or(&day.label)) }
                    }
                }
            }
            figcaption.muted { (title) }
        }
    }
}

fn fmt(value: f64) -> String {
    format!("{value:.1}")
}

fn format_value(value: f64) -> String {
    if value >= 10.0 || value == value.trunc() {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}
