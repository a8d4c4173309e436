//! Bars for a terminal: an axis between its limits, and a motion's progress. Plain ASCII, so
//! that any terminal (and a captured pane) shows them alike.

/// An axis between `min` and `max`, `width` cells: `#` up to the position, `.` beyond it, `|`
/// at the target. An unknown position draws no `#`; an unknown target no `|`.
pub fn axis(
    min: f64,
    max: f64,
    position: Option<f64>,
    target: Option<f64>,
    width: usize,
) -> String {
    let known = |v: Option<f64>| v.filter(|v| v.is_finite() && max > min && width > 0);
    let cell = |v: f64| {
        let f = ((v - min) / (max - min)).clamp(0.0, 1.0);
        (f * (width - 1) as f64).round() as usize
    };
    let p = known(position).map(cell);
    let t = known(target).map(cell);
    (0..width)
        .map(|i| {
            if t == Some(i) {
                '|'
            } else if p.is_some_and(|p| i <= p) {
                '#'
            } else {
                '.'
            }
        })
        .collect()
}

/// (columns, rows) of the terminal on standard output: its window size, else `COLUMNS` and
/// `LINES`, else 80×24.
pub fn terminal_size() -> (usize, usize) {
    // SAFETY: TIOCGWINSZ writes one winsize into the struct it is given, nothing else.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
    };
    let cols = if ok && ws.ws_col > 0 {
        ws.ws_col as usize
    } else {
        env("COLUMNS").unwrap_or(80)
    };
    let rows = if ok && ws.ws_row > 0 {
        ws.ws_row as usize
    } else {
        env("LINES").unwrap_or(24)
    };
    (cols, rows)
}

/// `line` cut to `cols` characters, so that a redraw in place never wraps.
pub fn fit(line: &str, cols: usize) -> String {
    line.chars().take(cols).collect()
}

/// A fraction done (0..1), `width` cells of `#` and `.`, and the percentage.
pub fn progress(done: f64, width: usize) -> String {
    let done = if done.is_finite() {
        done.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let full = (done * width as f64).floor() as usize;
    format!(
        "[{}{}] {:>3.0} %",
        "#".repeat(full),
        ".".repeat(width - full),
        (done * 100.0).floor()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_axis_bar_marks_position_and_target() {
        assert_eq!(axis(0.0, 100.0, Some(0.0), Some(100.0), 5), "#...|");
        assert_eq!(axis(0.0, 100.0, Some(50.0), Some(50.0), 5), "##|..");
        assert_eq!(axis(-100.0, 100.0, Some(100.0), Some(-100.0), 5), "|####");
        assert_eq!(axis(0.0, 10.0, None, Some(5.0), 5), "..|..");
        assert_eq!(axis(0.0, 10.0, Some(f64::NAN), None, 3), "...");
        assert_eq!(
            axis(0.0, 10.0, Some(99.0), None, 3),
            "###",
            "clamped to the range"
        );
    }

    #[test]
    fn a_line_is_cut_to_the_terminal() {
        assert_eq!(fit("abcdef", 4), "abcd");
        assert_eq!(fit("ab", 4), "ab");
        assert_eq!(fit("ééé", 2), "éé");
    }

    #[test]
    fn progress_counts_whole_cells_and_percent() {
        assert_eq!(progress(0.0, 4), "[....]   0 %");
        assert_eq!(progress(0.5, 4), "[##..]  50 %");
        assert_eq!(
            progress(0.999, 4),
            "[###.]  99 %",
            "never 100 % before the end"
        );
        assert_eq!(progress(1.0, 4), "[####] 100 %");
        assert_eq!(progress(f64::NAN, 2), "[..]   0 %");
    }
}
