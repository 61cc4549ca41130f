//! SVG charts, drawn by plotters' SVG backend (no fonts: the viewer renders
//! the text): the latency distribution of each phase, and each phase's
//! throughput second by second.

use hdrhistogram::Histogram;
use plotters::prelude::*;

use crate::progress::Sample;

const SIZE: (u32, u32) = (960, 560);
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Nines shown on the latency chart's x axis: up to 99.999 %.
const NINES: f64 = 5.0;

/// x of percentile `q` (0..1) on the chart: the number of nines, so that
/// 90 %, 99 %, 99.9 % are evenly spaced.
pub fn nines(q: f64) -> f64 {
    (-(1.0 - q).max(1e-12).log10()).min(NINES)
}

/// The label of x = `nines`: 0 → "0%", 1 → "90%", 3 → "99.9%".
pub fn nines_label(nines: f64) -> String {
    let percent = 100.0 * (1.0 - 10f64.powf(-nines));
    let text = format!("{percent:.5}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// Points (nines, ms) of a latency distribution, fine enough for a line.
pub fn spectrum(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    if histogram.is_empty() {
        return Vec::new();
    }
    (0..=(NINES * 20.0) as u32)
        .map(|step| {
            let x = f64::from(step) / 20.0;
            let q = 1.0 - 10f64.powf(-x);
            (x, histogram.value_at_quantile(q) as f64 / 1_000.0)
        })
        .collect()
}

fn chart_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e}")
}

/// Draws each line in its own colour, with a legend at `legend_at`.
fn draw_lines<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    lines: Vec<(&str, Vec<(f64, f64)>)>,
    legend_at: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (i, (label, points)) in lines.into_iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(chart_error)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(legend_at)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(chart_error)?;
    Ok(())
}

/// Latency (ms, log scale) by percentile, one line per phase.
pub fn latency_svg(series: &[(&str, &Histogram<u64>)]) -> anyhow::Result<String> {
    let lines: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(label, h)| (*label, spectrum(h)))
        .filter(|(_, points)| !points.is_empty())
        .collect();
    let max_ms = lines
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1))
        .fold(1.0f64, f64::max);
    let min_ms = lines
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1))
        .fold(max_ms, f64::min)
        .max(0.001);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Latency by percentile", ("sans-serif", 22))
            .margin(16)
            .margin_right(40)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..NINES, (min_ms * 0.8..max_ms * 1.25).log_scale())
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .x_labels(NINES as usize + 1)
            .x_label_formatter(&|x| nines_label(*x))
            .y_label_formatter(&|y| crate::stats::format_ms(*y))
            .x_desc("percentile")
            .y_desc("latency")
            .draw()
            .map_err(chart_error)?;
        draw_lines(&mut chart, lines, SeriesLabelPosition::LowerRight)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

/// Operations per second over time, one line per phase (each from its own start).
pub fn throughput_svg(series: &[(&str, &[Sample])]) -> anyhow::Result<String> {
    let lines: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(label, samples)| {
            (
                *label,
                samples.iter().map(|s| (s.t_s, s.rate)).collect::<Vec<_>>(),
            )
        })
        .filter(|(_, points)| !points.is_empty())
        .collect();
    let max_t = lines
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let max_rate = lines
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1))
        .fold(1.0f64, f64::max);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Throughput over time", ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..max_t.ceil(), 0.0..max_rate * 1.1)
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the phase started")
            .y_desc("per second")
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(chart_error)?;
        draw_lines(&mut chart, lines, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn percentiles_map_to_nines_and_back() {
        assert!((nines(0.9) - 1.0).abs() < 1e-9);
        assert!((nines(0.999) - 3.0).abs() < 1e-9);
        assert_eq!(nines(1.0), NINES);
        assert_eq!(nines_label(0.0), "0%");
        assert_eq!(nines_label(1.0), "90%");
        assert_eq!(nines_label(3.0), "99.9%");
        assert_eq!(nines_label(5.0), "99.999%");
    }

    #[test]
    fn the_latency_chart_has_a_line_and_a_legend_per_phase() {
        let mut a = crate::stats::new_histogram();
        let mut b = crate::stats::new_histogram();
        for ms in 1..=1000 {
            crate::stats::record(&mut a, Duration::from_millis(ms));
            crate::stats::record(&mut b, Duration::from_millis(ms * 3));
        }
        let empty = crate::stats::new_histogram();
        let svg = latency_svg(&[("closed", &a), ("open", &b), ("nothing", &empty)]).unwrap();

        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(
            svg.contains("\nclosed\n") && svg.contains("\nopen\n"),
            "legend"
        );
        assert!(!svg.contains("\nnothing\n"), "an empty phase has no line");
        assert!(svg.contains("\n99.9%\n"), "x axis in nines");
        // Each phase: its line and its legend mark, in its own colour.
        assert_eq!(svg.matches(r##"stroke="#1F77B4""##).count(), 2);
        assert_eq!(svg.matches(r##"stroke="#FF7F0E""##).count(), 2);
        assert_eq!(svg.matches(r##"stroke="#2CA02C""##).count(), 0);
    }

    #[test]
    fn the_throughput_chart_draws_each_phase() {
        let samples: Vec<Sample> = (1..=5)
            .map(|t| Sample {
                t_s: f64::from(t),
                rate: 100.0 * f64::from(t),
                errors: 0,
                backlog: None,
            })
            .collect();
        let svg = throughput_svg(&[("intake", &samples), ("none", &[])]).unwrap();
        assert!(svg.contains("\nintake\n"));
        assert!(!svg.contains("\nnone\n"));
        assert_eq!(svg.matches(r##"stroke="#1F77B4""##).count(), 2);
    }
}
