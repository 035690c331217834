//! The inline-SVG chart of the history page: findings by kind over the
//! last runs, one line per kind, one point per run. Plain SVG elements with
//! presentation attributes, so the page's Content-Security-Policy needs no
//! inline styles for it and no external asset is loaded.

use crate::model::FindingKind;
use serde::Serialize;
use std::collections::BTreeMap;
use strum::IntoEnumIterator;

/// How many runs the chart shows at most.
pub const CHART_RUNS: usize = 30;

/// Chart area in SVG user units.
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// One run on the chart: its id and its findings by kind.
#[derive(Clone, Debug)]
pub struct ChartRun {
    pub run_id: i64,
    pub by_kind: BTreeMap<FindingKind, u64>,
}

/// One point: a kind's count in a run, at (x, y).
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub run_id: i64,
    pub count: u64,
    pub x: String,
    pub y: String,
}

/// One line: a kind across the runs.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    pub kind: &'static str,
    pub color: &'static str,
    /// The `points` attribute of the polyline.
    pub polyline: String,
    pub points: Vec<Point>,
}

/// A label on an axis.
#[derive(Clone, Debug, Serialize)]
pub struct Tick {
    pub label: String,
    pub x: String,
    pub y: String,
}

/// Everything the template draws.
#[derive(Clone, Debug, Serialize)]
pub struct Chart {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right_edge: f64,
    pub top: f64,
    pub baseline: f64,
    pub series: Vec<Series>,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
}

/// A colour per kind, distinguishable on white (Okabe–Ito palette plus
/// neutrals), fixed so a kind keeps its colour from run to run.
fn color(kind: FindingKind) -> &'static str {
    const PALETTE: [&str; 10] = [
        "#d55e00", "#0072b2", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#6f42c1", "#8c564b",
        "#000000", "#7f7f7f",
    ];
    let index = FindingKind::iter().position(|k| k == kind).unwrap_or(0);
    PALETTE[index % PALETTE.len()]
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// The chart of `runs` (oldest first; only the last [`CHART_RUNS`] are
/// drawn). Kinds that never occur get no line; a kind missing from a run
/// counts 0 there.
pub fn build(runs: &[ChartRun]) -> Chart {
    let runs = &runs[runs.len().saturating_sub(CHART_RUNS)..];
    let max = runs
        .iter()
        .flat_map(|r| r.by_kind.values().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_of = |i: usize| {
        if runs.len() <= 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (runs.len() - 1) as f64
        }
    };
    let y_of = |count: u64| TOP + plot_h * (1.0 - count as f64 / max as f64);

    let series = FindingKind::iter()
        .filter(|kind| {
            runs.iter()
                .any(|r| r.by_kind.get(kind).copied().unwrap_or(0) > 0)
        })
        .map(|kind| {
            let points: Vec<Point> = runs
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let count = r.by_kind.get(&kind).copied().unwrap_or(0);
                    Point {
                        run_id: r.run_id,
                        count,
                        x: fmt(x_of(i)),
                        y: fmt(y_of(count)),
                    }
                })
                .collect();
            let polyline = points
                .iter()
                .map(|p| format!("{},{}", p.x, p.y))
                .collect::<Vec<_>>()
                .join(" ");
            Series {
                kind: kind.as_str(),
                color: color(kind),
                polyline,
                points,
            }
        })
        .collect();

    let y_ticks = [0, max / 2, max]
        .into_iter()
        .map(|v| Tick {
            label: v.to_string(),
            x: fmt(LEFT - 6.0),
            y: fmt(y_of(v) + 4.0),
        })
        .collect();
    // Label every run when few, else about eight evenly spaced ones.
    let step = runs.len().div_ceil(8).max(1);
    let x_ticks = runs
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i + 1 == runs.len())
        .map(|(i, r)| Tick {
            label: format!("#{}", r.run_id),
            x: fmt(x_of(i)),
            y: fmt(HEIGHT - 8.0),
        })
        .collect();

    Chart {
        width: WIDTH,
        height: HEIGHT,
        left: LEFT,
        right_edge: WIDTH - RIGHT,
        top: TOP,
        baseline: HEIGHT - BOTTOM,
        series,
        y_ticks,
        x_ticks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: i64, kinds: &[(FindingKind, u64)]) -> ChartRun {
        ChartRun {
            run_id: id,
            by_kind: kinds.iter().copied().collect(),
        }
    }

    #[test]
    fn one_line_per_kind_that_occurs_and_a_point_per_run() {
        let chart = build(&[
            run(
                1,
                &[(FindingKind::IdMismatch, 10), (FindingKind::Conflict, 2)],
            ),
            run(2, &[(FindingKind::IdMismatch, 5)]),
        ]);
        let kinds: Vec<&str> = chart.series.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, ["id_mismatch", "conflict"]);
        let mismatch = &chart.series[0];
        assert_eq!(mismatch.points.len(), 2);
        assert_eq!(mismatch.points[0].y, fmt(TOP), "the maximum is at the top");
        assert_eq!(
            mismatch.points[1].y,
            fmt(TOP + (HEIGHT - TOP - BOTTOM) / 2.0)
        );
        assert_eq!(chart.series[1].points[1].count, 0, "missing kind counts 0");
        assert_eq!(chart.series[1].points[1].y, fmt(HEIGHT - BOTTOM));
    }

    #[test]
    fn only_the_last_thirty_runs_are_drawn() {
        let runs: Vec<ChartRun> = (1..=45)
            .map(|i| run(i, &[(FindingKind::IdMismatch, i as u64)]))
            .collect();
        let chart = build(&runs);
        let points = &chart.series[0].points;
        assert_eq!(points.len(), CHART_RUNS);
        assert_eq!(points[0].run_id, 16);
        assert_eq!(points[CHART_RUNS - 1].run_id, 45);
    }

    #[test]
    fn no_runs_no_lines() {
        let chart = build(&[]);
        assert!(chart.series.is_empty());
        assert!(chart.x_ticks.is_empty());
    }
}
