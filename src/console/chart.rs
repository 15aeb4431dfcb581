//! Bar charts drawn on the server as SVG: one bar per hour, stacked by kind.
//! No script and no inline style: colours come from the stylesheet's classes.

/// Drawing area, in SVG units (the element scales to its box).
const WIDTH: f64 = 840.0;
const HEIGHT: f64 = 160.0;
/// Room under the bars for the day labels.
const AXIS: f64 = 18.0;

/// One stacked part of one bar.
#[derive(Debug, Clone)]
pub struct Bar {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    /// The stylesheet class that colours it.
    pub class: &'static str,
    /// Shown on hover, read by screen readers.
    pub title: String,
}

/// A label under the bars (one per day).
#[derive(Debug, Clone)]
pub struct Tick {
    pub x: String,
    pub text: String,
}

/// A chart ready for the template.
#[derive(Debug, Clone)]
pub struct Chart {
    pub view_box: String,
    pub axis_y: String,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
    /// A sentence saying what the chart shows, for its accessible name.
    pub summary: String,
}

/// One hour's values, one per series (in the order of `series`).
pub struct Column {
    /// `2026-11-24T18`.
    pub hour: String,
    pub values: Vec<i64>,
}

/// A stacked bar chart of `columns`; `series` names each value and its class.
pub fn stacked(columns: &[Column], series: &[(&str, &'static str)], what: &str) -> Chart {
    let top = columns
        .iter()
        .map(|c| c.values.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let plot = HEIGHT - AXIS;
    let step = WIDTH / columns.len().max(1) as f64;
    let bar_width = (step * 0.8).max(1.0);
    let mut bars = Vec::new();
    let mut ticks = Vec::new();
    let mut totals = vec![0i64; series.len()];
    for (i, column) in columns.iter().enumerate() {
        let x = i as f64 * step;
        let mut base = plot;
        for (k, (&value, &(name, class))) in column.values.iter().zip(series).enumerate() {
            totals[k] += value;
            if value <= 0 {
                continue;
            }
            let height = plot * value as f64 / top as f64;
            base -= height;
            bars.push(Bar {
                x: format!("{x:.1}"),
                y: format!("{base:.1}"),
                width: format!("{bar_width:.1}"),
                height: format!("{height:.1}"),
                class,
                title: format!("{}:00 UTC: {value} {name}", column.hour.replace('T', " ")),
            });
        }
        if column.hour.ends_with("T00") || i == 0 {
            ticks.push(Tick {
                x: format!("{x:.1}"),
                text: column.hour.get(5..10).unwrap_or("").to_owned(),
            });
        }
    }
    let parts: Vec<String> = totals
        .iter()
        .zip(series)
        .map(|(total, (name, _))| format!("{total} {name}"))
        .collect();
    Chart {
        view_box: format!("0 0 {WIDTH} {HEIGHT}"),
        axis_y: format!("{:.1}", HEIGHT - 4.0),
        bars,
        ticks,
        summary: format!(
            "{what} per hour over the last {} hours: {}; the tallest hour has {top}",
            columns.len(),
            parts.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_stack_and_the_summary_counts_them() {
        let columns = vec![
            Column {
                hour: "2026-11-24T23".into(),
                values: vec![2, 0],
            },
            Column {
                hour: "2026-11-25T00".into(),
                values: vec![1, 1],
            },
        ];
        let chart = stacked(
            &columns,
            &[("successful", "ok"), ("failed", "bad")],
            "Logins",
        );
        assert_eq!(chart.bars.len(), 3);
        assert_eq!(chart.ticks.len(), 2);
        assert!(
            chart.summary.contains("3 successful, 1 failed"),
            "{}",
            chart.summary
        );
        assert!(chart.bars[0]
            .title
            .starts_with("2026-11-24 23:00 UTC: 2 successful"));
    }
}
