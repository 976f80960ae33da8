//! Line charts drawn as SVG on the server: no script, no chart library (npm is out of reach
//! here, and a console page should render without either).

use maud::{html, Markup};

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 160.0;
const PAD: f64 = 36.0;

/// A line chart of `(time ms, value)` points, with the value range and time span labelled;
/// a note instead when there are fewer than two points yet.
pub fn line(title: &str, unit: &str, points: &[(i64, f64)]) -> Markup {
    if points.len() < 2 {
        return html! {
            figure.chart {
                figcaption { (title) }
                p.muted { "Collecting samples…" }
            }
        };
    }
    let (t0, t1) = (points[0].0, points[points.len() - 1].0);
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let top = if max <= 0.0 { 1.0 } else { max };
    let span = (t1 - t0).max(1) as f64;
    let x = |t: i64| PAD + (t - t0) as f64 / span * (WIDTH - 2.0 * PAD);
    let y = |v: f64| HEIGHT - PAD / 2.0 - v / top * (HEIGHT - PAD);
    let path: String = points
        .iter()
        .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
        .collect::<Vec<_>>()
        .join(" ");
    let last = points[points.len() - 1].1;
    html! {
        figure.chart {
            figcaption { (title) ": " strong { (format_value(last)) " " (unit) } }
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(title) {
                line x1=(PAD) y1=(y(0.0)) x2=(WIDTH - PAD) y2=(y(0.0)) class="axis" {}
                line x1=(PAD) y1=(y(top)) x2=(PAD) y2=(y(0.0)) class="axis" {}
                text x="2" y=(y(top) + 4.0) class="label" { (format_value(top)) }
                text x="2" y=(y(0.0)) class="label" { "0" }
                text x=(WIDTH - PAD) y=(HEIGHT - 2.0) text-anchor="end" class="label" {
                    "last " (format!("{:.0}", span / 1000.0)) " s"
                }
                polyline points=(path) class="series" {}
            }
        }
    }
}

fn format_value(v: f64) -> String {
    if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_map_into_the_drawing_area() {
        let svg = line("lag", "records", &[(0, 0.0), (5_000, 10.0), (10_000, 5.0)]).into_string();
        assert!(
            svg.contains("<polyline points=\"36.0,142.0 300.0,18.0 564.0,80.0\""),
            "{svg}"
        );
        assert!(svg.contains("last 10 s"));
        assert!(line("lag", "records", &[(0, 1.0)])
            .into_string()
            .contains("Collecting"));
    }
}
