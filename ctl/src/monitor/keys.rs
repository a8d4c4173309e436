//! `monitor --keys`: where every key is (`Vehicle.KeyEstimates`) and which one is selected
//! (`Vehicle.NearestKey`). On a terminal, a live top view of the car and the keys around it,
//! redrawn on every change; otherwise (or with `--json`) one line per change.

use std::collections::HashMap;
use std::io::IsTerminal;

use futures_util::StreamExt;
use serde_json::{Value, json};
use zbus::proxy::CacheProperties;
use zbus::{Connection, OwnedVariant};

use driverprofiled_api::path::ROOT;
use driverprofiled_api::proxy::VehicleProxy;
use driverprofiled_api::{BUS_NAME, interface};

use crate::bus::{Fail, exit};

/// (name, x, y) of each anchor, then "driver_spot": `Vehicle.KeyGeometry`.
pub type Geometry = [(String, f64, f64)];
/// (key id, x, y, probability): `Vehicle.KeyEstimates`.
pub type Estimate = (String, f64, f64, f64);

/// The name `KeyGeometry` gives the driver's spot.
const DRIVER_SPOT: &str = "driver_spot";
/// The car outline: at least this wide and long (metres), centred on the anchors.
const CAR_WIDTH: f64 = 1.9;
const CAR_LENGTH: f64 = 4.7;
/// The view shows at least this far around the car's centre, each way (metres).
const REACH: f64 = 8.0;
/// A terminal cell is about this many times as tall as it is wide.
const CELL_ASPECT: f64 = 2.0;

/// What is known of the keys now.
#[derive(Default)]
struct Keys {
    estimates: Vec<Estimate>,
    nearest: String,
}

impl Keys {
    async fn read(v: &VehicleProxy<'_>) -> Result<Keys, Fail> {
        Ok(Keys {
            estimates: v.key_estimates().await?,
            nearest: v.nearest_key().await?,
        })
    }

    fn json(&self) -> Value {
        let est: Vec<Value> = self
            .estimates
            .iter()
            .map(|(k, x, y, p)| json!({"key": k, "x": x, "y": y, "p": p}))
            .collect();
        json!({"version": 1, "key_estimates": est, "nearest_key": self.nearest})
    }

    fn text(&self) -> String {
        let nearest = if self.nearest.is_empty() {
            "none"
        } else {
            &self.nearest
        };
        let mut t = format!("nearest_key={nearest}");
        if self.estimates.is_empty() {
            t += " keys=none";
        }
        for (k, x, y, p) in &self.estimates {
            t += &format!(" {k}:x={x:.2},y={y:.2},p={p:.2}");
        }
        t
    }
}

pub async fn run(conn: &Connection, json: bool) -> Result<(), Fail> {
    // Subscribe before reading, so that no change falls between the two.
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(BUS_NAME)
        .path(ROOT)
        .interface("org.freedesktop.DBus.Properties")
        .member("PropertiesChanged")
        .add_arg(interface::VEHICLE)
        .build()?;
    let mut signals = zbus::MessageStream::for_match_rule(rule, conn, None).await?;
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    let mut owner = dbus
        .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
        .await?;
    let vehicle = VehicleProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    let geometry = vehicle.key_geometry().await?;
    if geometry.is_empty() {
        return Err(Fail::new(
            exit::UNAVAILABLE,
            "monitor --keys: the car config has no key geometry ([keys.geometry]), so the \
             daemon estimates no key positions",
        ));
    }
    let mut keys = Keys::read(&vehicle).await?;
    let live = !json && std::io::stdout().is_terminal();
    let mut screen = Screen::default();
    let mut note = String::new();
    let show = |keys: &Keys, note: &str, screen: &mut Screen| {
        if live {
            screen.draw(&geometry, keys, note);
        } else if json {
            println!("{}", keys.json());
        } else {
            println!("{}", keys.text());
        }
        crate::flush();
    };
    show(&keys, &note, &mut screen);
    loop {
        tokio::select! {
            msg = signals.next() => {
                let Some(msg) = msg else { break };
                let Ok(msg) = msg else { continue };
                let Ok((of, changed, invalidated)) = msg.body().deserialize::<(
                    String,
                    HashMap<String, OwnedVariant>,
                    Vec<String>,
                )>() else {
                    continue;
                };
                if of != interface::VEHICLE {
                    continue;
                }
                let mut any = false;
                if let Some(v) = changed.get("KeyEstimates")
                    && let Some(e) = estimates_of(v)
                {
                    keys.estimates = e;
                    any = true;
                }
                if let Some(v) = changed.get("NearestKey")
                    && let Ok(s) = v.downcast_ref::<&str>()
                {
                    keys.nearest = s.to_string();
                    any = true;
                }
                if invalidated.iter().any(|n| n == "KeyEstimates" || n == "NearestKey") {
                    if let Ok(k) = Keys::read(&vehicle).await {
                        keys = k;
                    }
                    any = true;
                }
                if any {
                    show(&keys, &note, &mut screen);
                }
            }
            sig = owner.next() => {
                let Some(sig) = sig else { break };
                let Ok(args) = sig.args() else { continue };
                let new = args.new_owner().as_ref().map(|o| o.to_string()).unwrap_or_default();
                if new.is_empty() {
                    keys = Keys::default();
                    note = format!("{BUS_NAME} has no owner now");
                } else {
                    keys = Keys::read(&vehicle).await.unwrap_or_default();
                    note.clear();
                }
                if !live {
                    if json {
                        println!("{}", json!({"version": 1, "signal": "NameOwnerChanged",
                                              "name": BUS_NAME, "owner": new}));
                    } else {
                        println!("NameOwnerChanged {BUS_NAME} owner={new}");
                    }
                }
                show(&keys, &note, &mut screen);
            }
        }
    }
    Err(Fail::new(exit::UNAVAILABLE, "the bus connection ended"))
}

fn estimates_of(v: &OwnedVariant) -> Option<Vec<Estimate>> {
    let v = v.try_clone().ok()?;
    Vec::<Estimate>::try_from(v).ok()
}

/// The live drawing on a terminal: the whole screen, redrawn in place.
#[derive(Default)]
struct Screen {
    started: bool,
}

impl Screen {
    fn draw(&mut self, geometry: &Geometry, keys: &Keys, note: &str) {
        let (cols, rows) = crate::bar::terminal_size();
        let mut lines = draw_keys(geometry, &keys.estimates, &keys.nearest, cols, rows);
        if !note.is_empty()
            && let Some(last) = lines.last_mut()
        {
            *last = fit(note, cols);
        }
        let mut out = String::new();
        if !self.started {
            out += "\x1b[2J";
            self.started = true;
        }
        out += "\x1b[H";
        out += &lines
            .iter()
            .map(|l| format!("{l}\x1b[K"))
            .collect::<Vec<_>>()
            .join("\r\n");
        out += "\x1b[J";
        print!("{out}");
    }
}

/// At most `cols` characters of `s`.
fn fit(s: &str, cols: usize) -> String {
    s.chars().take(cols).collect()
}

/// The symbol of the `i`th key: a-z, then 0-9, then '#'.
fn symbol(i: usize) -> char {
    const SYMBOLS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    SYMBOLS.get(i).map(|&b| b as char).unwrap_or('#')
}

/// The top view of the car and the keys around it (forward up, passenger side right), at most
/// `cols` characters wide and `rows` lines long (a little longer on a tiny terminal): a title,
/// the map, then a legend of the anchors and one line per key.
///
/// The car is a `CAR_WIDTH`×`CAR_LENGTH` rectangle (larger if the anchors need it) centred on
/// the anchors' bounding box; anchors are `+` with their first letter in capitals, the
/// driver's spot `*`, keys their legend letter. The scale fits at least ±`REACH` metres around
/// the car's centre; a key beyond that is drawn at the edge, behind an arrow pointing its way,
/// and its legend line says "off view".
pub fn draw_keys(
    geometry: &Geometry,
    estimates: &[Estimate],
    selected: &str,
    cols: usize,
    rows: usize,
) -> Vec<String> {
    let cols = cols.max(20);
    let anchors: Vec<&(String, f64, f64)> =
        geometry.iter().filter(|g| g.0 != DRIVER_SPOT).collect();
    let spot = geometry.iter().find(|g| g.0 == DRIVER_SPOT);
    let pts: Vec<(f64, f64)> = if anchors.is_empty() {
        geometry.iter().map(|g| (g.1, g.2)).collect()
    } else {
        anchors.iter().map(|g| (g.1, g.2)).collect()
    };
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in &pts {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if pts.is_empty() {
        (x0, x1, y0, y1) = (0.0, 0.0, 0.0, 0.0);
    }
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let half_w = ((x1 - x0) / 2.0).max(CAR_WIDTH / 2.0);
    let half_l = ((y1 - y0) / 2.0).max(CAR_LENGTH / 2.0);

    // Legend: the anchors on one line, then one line per key (or "no key").
    let mut legend = Vec::new();
    let mut marks: Vec<String> = anchors
        .iter()
        .map(|a| format!("+{} {}", initial(&a.0), a.0))
        .collect();
    if spot.is_some() {
        marks.push("* driver's spot".into());
    }
    legend.push(marks.join("  "));
    let map_rows = rows.saturating_sub(2 + estimates.len().max(1)).max(9);
    // Odd sizes put the centre on a cell.
    let map_rows = map_rows - (1 - map_rows % 2);
    let map_cols = cols - (1 - cols % 2);
    // Metres per column; a row is CELL_ASPECT columns tall.
    let m_col = (2.0 * REACH / (map_cols - 1) as f64)
        .max(2.0 * REACH / ((map_rows - 1) as f64 * CELL_ASPECT));
    let m_row = m_col * CELL_ASPECT;
    let (mid_c, mid_r) = ((map_cols / 2) as f64, (map_rows / 2) as f64);
    let to_cell =
        |x: f64, y: f64| -> (f64, f64) { (mid_c + (x - cx) / m_col, mid_r - (y - cy) / m_row) };
    let inside = |c: f64, r: f64| {
        let (c, r) = (c.round(), r.round());
        c >= 0.0 && r >= 0.0 && c < map_cols as f64 && r < map_rows as f64
    };

    let mut grid = vec![vec![' '; map_cols]; map_rows];
    let put = |grid: &mut Vec<Vec<char>>, c: f64, r: f64, ch: char| {
        if inside(c, r) {
            grid[r.round() as usize][c.round() as usize] = ch;
        }
    };
    // The car.
    let (l, t) = to_cell(cx - half_w, cy + half_l);
    let (r, b) = to_cell(cx + half_w, cy - half_l);
    let (l, r, t, b) = (l.round(), r.round(), t.round(), b.round());
    let mut c = l;
    while c <= r {
        put(&mut grid, c, t, '-');
        put(&mut grid, c, b, '-');
        c += 1.0;
    }
    let mut row = t;
    while row <= b {
        put(&mut grid, l, row, '|');
        put(&mut grid, r, row, '|');
        row += 1.0;
    }
    for (c, row) in [(l, t), (r, t), (l, b), (r, b)] {
        put(&mut grid, c, row, '.');
    }
    // The anchors, their initial beside them (outward on the driver's side).
    let mut labels = Vec::new();
    for a in &anchors {
        let (c, row) = to_cell(a.1, a.2);
        let (c, row) = (c.round(), row.round());
        put(&mut grid, c, row, '+');
        let side = if a.1 < cx { -1.0 } else { 1.0 };
        labels.push((c + side, row, initial(&a.0)));
    }
    for (c, row, ch) in labels {
        if inside(c, row) && grid[row as usize][c as usize] != '+' {
            put(&mut grid, c, row, ch);
        }
    }
    if let Some(s) = spot {
        let (c, row) = to_cell(s.1, s.2);
        put(&mut grid, c, row, '*');
    }
    // The keys, the selected one last (on top).
    let mut order: Vec<usize> = (0..estimates.len()).collect();
    order.sort_by_key(|&i| estimates[i].0 == selected);
    let mut off = vec![false; estimates.len()];
    for i in order {
        let (_, x, y, _) = &estimates[i];
        let (c, row) = to_cell(*x, *y);
        if !c.is_finite() || !row.is_finite() {
            continue;
        }
        if inside(c, row) {
            put(&mut grid, c, row, symbol(i));
            continue;
        }
        off[i] = true;
        let cc = c.round().clamp(0.0, (map_cols - 1) as f64);
        let rr = row.round().clamp(0.0, (map_rows - 1) as f64);
        let sign = |d: f64| {
            if d > 0.0 {
                1.0
            } else if d < 0.0 {
                -1.0
            } else {
                0.0
            }
        };
        let (dc, dr) = (sign(c.round() - cc), sign(row.round() - rr));
        let arrow = match (dc as i32, dr as i32) {
            (-1, -1) => '↖',
            (-1, 1) => '↙',
            (1, -1) => '↗',
            (1, 1) => '↘',
            (-1, _) => '←',
            (1, _) => '→',
            (_, -1) => '↑',
            _ => '↓',
        };
        put(&mut grid, cc, rr, arrow);
        put(&mut grid, cc - dc, rr - dr, symbol(i));
    }

    let width = estimates
        .iter()
        .map(|e| e.0.chars().count())
        .max()
        .unwrap_or(0);
    if estimates.is_empty() {
        legend.push("no key present".into());
    }
    for (i, (k, x, y, p)) in estimates.iter().enumerate() {
        let mut l = format!(
            "{}  {k:<width$}  x {x:>6.2}  y {y:>6.2}   p {p:.2}",
            symbol(i)
        );
        if off[i] {
            l += "  (off view)";
        }
        if k == selected {
            l += "  ← selected";
        }
        legend.push(l);
    }

    let mut out = vec![fit(
        &format!("keys, top view: forward ↑, passenger side →, 1 column = {m_col:.2} m"),
        cols,
    )];
    out.extend(grid.into_iter().map(|r| {
        let s: String = r.into_iter().collect();
        s.trim_end().to_string()
    }));
    out.extend(legend.iter().map(|l| fit(l, cols)));
    out
}

fn initial(name: &str) -> char {
    name.chars()
        .next()
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or('?')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Vec<(String, f64, f64)> {
        [
            ("driver_door", -0.95, 0.2),
            ("passenger_door", 0.95, 0.2),
            ("rear", 0.0, -2.2),
            ("cabin", 0.0, 0.3),
            ("driver_spot", -1.45, 0.2),
        ]
        .iter()
        .map(|(n, x, y)| (n.to_string(), *x, *y))
        .collect()
    }

    /// (column, row) of the first `ch` on the map (in characters; rows of the drawing): the
    /// lines between the title and the legend.
    fn find(lines: &[String], ch: char) -> Option<(usize, usize)> {
        let legend = lines.iter().position(|l| l.starts_with("+D")).unwrap();
        lines[..legend]
            .iter()
            .enumerate()
            .skip(1)
            .find_map(|(r, l)| l.chars().position(|c| c == ch).map(|c| (c, r)))
    }

    /// Leftmost and rightmost column of the car outline on row `r`.
    fn car_edges(lines: &[String], r: usize) -> (usize, usize) {
        let cs: Vec<usize> = lines[r]
            .chars()
            .enumerate()
            .filter(|(_, c)| "|.+".contains(*c))
            .map(|(i, _)| i)
            .collect();
        (*cs.first().unwrap(), *cs.last().unwrap())
    }

    fn est(k: &str, x: f64, y: f64, p: f64) -> Estimate {
        (k.to_string(), x, y, p)
    }

    #[test]
    fn keys_view_fits_the_terminal() {
        for (cols, rows) in [(80, 24), (120, 40), (40, 15)] {
            let e = [
                est("driver-key", -3.2, 1.0, 0.93),
                est("spare", 2.0, -4.0, 0.01),
            ];
            let lines = draw_keys(&shipped(), &e, "driver-key", cols, rows);
            assert!(lines.len() <= rows, "{} lines for {rows}", lines.len());
            assert!(lines.iter().all(|l| l.chars().count() <= cols));
        }
    }

    #[test]
    fn keys_view_driver_spot_left_of_the_car() {
        let lines = draw_keys(&shipped(), &[], "", 80, 24);
        let (c, r) = find(&lines, '*').expect("driver's spot drawn");
        let (left, right) = car_edges(&lines, r);
        assert!(
            c < left,
            "spot at {c}, car {left}..{right}\n{}",
            lines.join("\n")
        );
        // Anchors: driver door on the left edge, passenger door on the right, both marked.
        let plus: Vec<usize> = lines[r]
            .chars()
            .enumerate()
            .filter(|(_, ch)| *ch == '+')
            .map(|(i, _)| i)
            .collect();
        assert!(
            plus.contains(&left) && plus.contains(&right),
            "{}",
            lines[r]
        );
        assert!(lines.iter().any(|l| l.contains("+R rear")));
        assert!(lines.iter().any(|l| l == "no key present"));
    }

    #[test]
    fn keys_view_key_left_of_the_car_and_legend() {
        let e = [
            est("driver-key", -5.0, 0.0, 0.93),
            est("spare", 3.0, 0.0, 0.07),
        ];
        let lines = draw_keys(&shipped(), &e, "driver-key", 80, 24);
        let (ca, ra) = find(&lines, 'a').expect("key a drawn");
        let (left, right) = car_edges(&lines, ra);
        assert!(
            ca + 5 < left,
            "key at {ca}, car {left}..{right}\n{}",
            lines.join("\n")
        );
        let (cb, rb) = find(&lines, 'b').expect("key b drawn");
        assert_eq!(ra, rb, "both at y 0");
        assert!(cb > right);
        assert!(
            lines.contains(&"a  driver-key  x  -5.00  y   0.00   p 0.93  ← selected".into()),
            "{}",
            lines.join("\n")
        );
        assert!(lines.contains(&"b  spare       x   3.00  y   0.00   p 0.07".into()));
        // Forward is up: a key ahead of the car is above it.
        let e = [est("k", 0.0, 5.0, 0.5)];
        let lines = draw_keys(&shipped(), &e, "", 80, 24);
        let (_, rk) = find(&lines, 'a').unwrap();
        let (_, rr) = find(&lines, 'R').unwrap();
        assert!(rk < rr);
    }

    #[test]
    fn keys_view_far_key_at_the_edge() {
        let e = [est("far", 40.0, 0.3, 0.0), est("behind", 0.0, -30.0, 0.0)];
        let lines = draw_keys(&shipped(), &e, "", 80, 24);
        let (c, r) = find(&lines, '→').expect("arrow");
        assert_eq!(c, 78, "{}", lines.join("\n"));
        assert_eq!(find(&lines, 'a'), Some((77, r)));
        let (_, r) = find(&lines, '↓').expect("arrow down");
        let map_last = lines.iter().position(|l| l.starts_with("+D")).unwrap() - 1;
        assert_eq!(r, map_last);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("a  far") && l.contains("(off view)"))
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("b  behind") && l.contains("(off view)"))
        );
    }
}
