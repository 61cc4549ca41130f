//! What a run leaves behind: the JSON report and the two charts.

use std::path::Path;

use anyhow::Context as _;
use hdrhistogram::Histogram;

use crate::cli::Output;
use crate::plot;
use crate::progress::Sample;
use crate::report::Report;

/// What the charts are drawn from.
#[derive(Default)]
pub struct Charts {
    pub latency: Vec<(String, Histogram<u64>)>,
    pub throughput: Vec<(String, Vec<Sample>)>,
}

pub fn write_outputs(output: &Output, report: &Report, charts: &Charts) -> anyhow::Result<()> {
    if let Some(path) = &output.json {
        create_parent(path)?;
        let json = serde_json::to_string_pretty(report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("figures written to {}", path.display());
    }
    if let Some(dir) = &output.svg_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let latency: Vec<(&str, &Histogram<u64>)> = charts
            .latency
            .iter()
            .map(|(l, h)| (l.as_str(), h))
            .collect();
        let throughput: Vec<(&str, &[Sample])> = charts
            .throughput
            .iter()
            .map(|(l, s)| (l.as_str(), s.as_slice()))
            .collect();
        for (name, svg) in [
            ("latency.svg", plot::latency_svg(&latency)?),
            ("throughput.svg", plot::throughput_svg(&throughput)?),
        ] {
            let path = dir.join(format!("{}{name}", output.svg_prefix));
            std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("chart written to {}", path.display());
        }
    }
    Ok(())
}

fn create_parent(path: &Path) -> anyhow::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display())),
        _ => Ok(()),
    }
}
