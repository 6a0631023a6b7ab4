//! Inline SVG line charts for the console's server-rendered pages (no
//! JavaScript library), and the number formatters the templates share.
//!
//! A chart carries no colours of its own: each series' polyline and legend
//! swatch has the series' class, and text and grid lines use
//! `currentColor`, so the page's stylesheet colours it and both light and
//! dark schemes work. The page's CSS is expected to give the `<svg>` its
//! width (`.chart { width: 100%; height: auto }`) and each series class a
//! `stroke`.

use std::fmt::Write as _;

/// One line of a chart.
#[derive(Clone, Copy, Debug)]
pub struct Series<'a> {
    /// The legend's text (escaped by [`line_chart`]).
    pub label: &'a str,
    /// The CSS class of the series' polyline and legend swatch (escaped).
    pub class: &'a str,
    /// `values[i]` is bucket `i`, oldest first. NaN, infinite and negative
    /// values are drawn as 0.
    pub values: &'a [f64],
}

/// Approximate advance of one character at the chart's font size, for the
/// layout of the legend and the y-axis labels.
const CHAR_WIDTH: f64 = 6.5;
/// The chart's font size (a presentation attribute: CSS may override it).
const FONT_SIZE: u32 = 11;
/// Height of one row of the legend.
const LEGEND_ROW: f64 = 16.0;
/// Length of a legend swatch, and the gaps around its text.
const SWATCH: f64 = 14.0;
const SWATCH_GAP: f64 = 4.0;
const ITEM_GAP: f64 = 12.0;
/// Margins around the plot area (left is computed from the labels).
const MARGIN_RIGHT: f64 = 8.0;
const MARGIN_TOP: f64 = 6.0;
const MARGIN_BOTTOM: f64 = 6.0;
/// The smallest drawing area: smaller requested sizes are enlarged.
const MIN_WIDTH: u32 = 160;
const MIN_HEIGHT: u32 = 80;
/// The largest drawing area: larger requested sizes are reduced.
const MAX_DIMENSION: u32 = 100_000;
/// The smallest y-axis maximum of a chart with positive values.
const MIN_AXIS: f64 = 0.001;

/// An SVG line chart (all series share the x axis: `values[i]` is bucket
/// `i`, oldest first, spread over the full width; and the y axis from 0 to a
/// "nice" max ≥ the largest value: 1, 2 or 5 × 10^n, or × 1024^k × 10^n for
/// bytes). Returns a complete `<svg ...>` element as a String, to be
/// inserted unescaped into HTML: every text in it (title, labels, axis
/// text, classes) is XML-escaped here.
///
/// `y_unit` formats the axis labels (max, half and 0): `"B"` or `"B/…"` are
/// bytes with binary prefixes (`"1.5 MiB"`, `"1.5 MiB/s"`), a unit starting
/// with a letter or digit follows the number after a space (`"12 ms"`), any
/// other directly (`"12.5/s"`, `"50%"`, or just the number for `""`).
///
/// Empty or all-zero series still draw a valid chart (axis max 1); a series
/// with one value is drawn as a flat line. `width` and `height` are the
/// `viewBox` (clamped to 160×80 ..= 100000×100000, and the height grows to
/// fit a legend of many rows); the `<svg>` scales to the page through its
/// `chart` class.
pub fn line_chart(title: &str, y_unit: &str, series: &[Series], width: u32, height: u32) -> String {
    let width = f64::from(width.clamp(MIN_WIDTH, MAX_DIMENSION));
    let requested_height = f64::from(height.clamp(MIN_HEIGHT, MAX_DIMENSION));

    let largest = series
        .iter()
        .flat_map(|s| s.values.iter())
        .map(|&v| sanitize(v))
        .fold(0.0, f64::max);
    let axis_max = nice_max(largest, is_bytes(y_unit));
    let labels = [
        (1.0, format_value(axis_max, y_unit)),
        (0.5, format_value(axis_max / 2.0, y_unit)),
        (0.0, format_value(0.0, y_unit)),
    ];

    // Horizontal layout: y labels right-aligned left of the plot.
    let label_chars = labels
        .iter()
        .map(|(_, l)| l.chars().count())
        .max()
        .unwrap_or(1);
    let left = (label_chars as f64 * CHAR_WIDTH + 10.0).min(width / 2.0);
    let right = width - MARGIN_RIGHT;

    // The legend: items left to right from the plot's left edge, wrapping.
    let mut legend = Vec::with_capacity(series.len());
    let (mut x, mut row) = (left, 0usize);
    for s in series {
        let item = SWATCH + SWATCH_GAP + s.label.chars().count() as f64 * CHAR_WIDTH + ITEM_GAP;
        if x > left && x + item > right {
            x = left;
            row += 1;
        }
        legend.push((x, row));
        x += item;
    }
    let legend_rows = if series.is_empty() { 0 } else { row + 1 };
    let top = MARGIN_TOP + legend_rows as f64 * LEGEND_ROW + f64::from(FONT_SIZE) / 2.0;
    // At least 40 units of plot, whatever the legend takes.
    let height = requested_height.max(top + MARGIN_BOTTOM + 40.0);
    let bottom = height - MARGIN_BOTTOM;
    let plot_h = bottom - top;
    let y_of = |v: f64| bottom - plot_h * (sanitize(v) / axis_max).min(1.0);

    let mut out =
        String::with_capacity(1024 + series.iter().map(|s| s.values.len() * 14).sum::<usize>());
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width:.0} {height:.0}" role="img" font-size="{FONT_SIZE}"><title>"#
    );
    escape_into(&mut out, title);
    out.push_str("</title>");

    // Grid lines at quarters, labels at 0, half and the max.
    out.push_str(r#"<g class="grid" stroke="currentColor" stroke-opacity="0.15">"#);
    for q in [1.0, 0.75, 0.5, 0.25] {
        let y = bottom - plot_h * q;
        let _ = write!(
            out,
            r#"<line x1="{left:.1}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}"/>"#
        );
    }
    out.push_str("</g>");
    let _ = write!(
        out,
        r#"<line class="axis" stroke="currentColor" stroke-opacity="0.5" x1="{left:.1}" y1="{bottom:.1}" x2="{right:.1}" y2="{bottom:.1}"/>"#
    );
    out.push_str(r#"<g class="axis-labels" fill="currentColor" text-anchor="end">"#);
    for (q, label) in &labels {
        let y = bottom - plot_h * q + f64::from(FONT_SIZE) * 0.35;
        let _ = write!(out, r#"<text x="{:.1}" y="{y:.1}">"#, left - 6.0);
        escape_into(&mut out, label);
        out.push_str("</text>");
    }
    out.push_str("</g>");

    // Legend: a swatch with the series' class, then its label.
    out.push_str(r#"<g class="legend">"#);
    for (s, &(x, row)) in series.iter().zip(&legend) {
        let y = MARGIN_TOP + row as f64 * LEGEND_ROW + LEGEND_ROW / 2.0;
        out.push_str(r#"<line class=""#);
        escape_into(&mut out, s.class);
        let _ = write!(
            out,
            r#"" stroke-width="2" x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/>"#,
            x + SWATCH
        );
        let _ = write!(
            out,
            r#"<text fill="currentColor" x="{:.1}" y="{:.1}">"#,
            x + SWATCH + SWATCH_GAP,
            y + f64::from(FONT_SIZE) * 0.35
        );
        escape_into(&mut out, s.label);
        out.push_str("</text>");
    }
    out.push_str("</g>");

    // The lines: values spread over the width of the longest series.
    let buckets = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let step = if buckets > 1 {
        (right - left) / (buckets - 1) as f64
    } else {
        0.0
    };
    out.push_str(r#"<g class="lines" fill="none" stroke-width="1.5" stroke-linejoin="round">"#);
    for s in series.iter().filter(|s| !s.values.is_empty()) {
        out.push_str(r#"<polyline class=""#);
        escape_into(&mut out, s.class);
        out.push_str(r#"" vector-effect="non-scaling-stroke" points=""#);
        if let [only] = s.values {
            let y = y_of(*only);
            let _ = write!(out, "{left:.1},{y:.1} {right:.1},{y:.1}");
        } else {
            for (i, &v) in s.values.iter().enumerate() {
                let sep = if i == 0 { "" } else { " " };
                let _ = write!(out, "{sep}{:.1},{:.1}", left + step * i as f64, y_of(v));
            }
        }
        out.push_str(r#""><title>"#);
        escape_into(&mut out, s.label);
        out.push_str("</title></polyline>");
    }
    out.push_str("</g></svg>");
    out
}

/// A byte count with binary prefixes: `"0 B"`, `"1023 B"`, `"1.5 KiB"`,
/// `"3.2 GiB"` (one decimal below 100, none above, trailing `.0` dropped).
pub fn format_bytes(n: u64) -> String {
    format_bytes_f64(n as f64)
}

/// A rate per second, three significant digits with SI prefixes: `"0/s"`,
/// `"0.0167/s"`, `"12.5/s"`, `"1.23k/s"`, `"4M/s"`. NaN, infinite and
/// negative rates read `"0/s"`.
pub fn format_rate(per_sec: f64) -> String {
    format!("{}/s", compact(per_sec))
}

/// `v` if it is finite and positive, else 0.
fn sanitize(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 { v } else { 0.0 }
}

/// Whether `unit` is bytes: `"B"` or `"B/…"`.
fn is_bytes(unit: &str) -> bool {
    unit.strip_prefix('B')
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// An axis label: `v` formatted for `unit` (see [`line_chart`]).
fn format_value(v: f64, unit: &str) -> String {
    if is_bytes(unit) {
        let rest = unit.get(1..).unwrap_or("");
        format!("{}{rest}", format_bytes_f64(v))
    } else if unit.starts_with(char::is_alphanumeric) {
        format!("{} {unit}", compact(v))
    } else {
        format!("{}{unit}", compact(v))
    }
}

/// [`format_bytes`] of a possibly fractional amount (a rate's axis): below
/// one byte, three significant digits.
fn format_bytes_f64(v: f64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let v = sanitize(v);
    if v < 1.0 {
        return format!("{} B", compact(v));
    }
    let (mut x, mut unit) = (v, 0);
    while x >= 1024.0 && unit + 1 < UNITS.len() {
        x /= 1024.0;
        unit += 1;
    }
    let mut text = one_decimal(x);
    // 1023.97 KiB rounds to "1024": that is 1 MiB.
    if text == "1024" && unit + 1 < UNITS.len() {
        unit += 1;
        text = "1".to_owned();
    }
    format!("{text} {}", UNITS.get(unit).copied().unwrap_or("EiB"))
}

/// `x` with one decimal below 100 and none above, trailing `.0` dropped.
fn one_decimal(x: f64) -> String {
    let text = if x < 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    };
    match text.strip_suffix(".0") {
        Some(whole) => whole.to_owned(),
        None => text,
    }
}

/// Three significant digits with SI prefixes (k, M, G, T; exponent notation
/// above), trailing zeros dropped; 0 for NaN, infinite or negative values.
fn compact(v: f64) -> String {
    let v = sanitize(v);
    if v == 0.0 {
        return "0".to_owned();
    }
    let v = round_significant(v);
    if v >= 1e15 {
        return format!("{v:.2e}");
    }
    for (scale, prefix) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if v >= scale {
            return format!("{}{prefix}", three_digits(v / scale));
        }
    }
    three_digits(v)
}

/// `v` (> 0) rounded to three significant digits.
fn round_significant(v: f64) -> f64 {
    let factor = 10f64.powf(2.0 - v.log10().floor());
    let rounded = (v * factor).round() / factor;
    if rounded.is_finite() && rounded > 0.0 {
        rounded
    } else {
        v
    }
}

/// `x` (> 0, < 1000) with the decimals three significant digits need (at
/// most 9), trailing zeros dropped.
fn three_digits(x: f64) -> String {
    let decimals = if x >= 100.0 {
        0
    } else if x >= 10.0 {
        1
    } else if x >= 1.0 {
        2
    } else {
        // 0.0167 → 4 decimals.
        let leading_zeros = (-x.log10().floor()) as usize;
        (leading_zeros + 2).min(9)
    };
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// The y-axis maximum for values up to `largest`: the smallest 1, 2 or 5 ×
/// 10^n (× 1024^k for bytes of a KiB or more) not below it; 1 when there is
/// nothing to draw, at least [`MIN_AXIS`] otherwise.
fn nice_max(largest: f64, bytes: bool) -> f64 {
    let largest = sanitize(largest);
    if largest == 0.0 {
        return 1.0;
    }
    let largest = largest.max(MIN_AXIS);
    let (mut scale, mut rest) = (1.0, largest);
    if bytes {
        while rest >= 1024.0 && scale < 1024f64.powi(6) {
            rest /= 1024.0;
            scale *= 1024.0;
        }
    }
    // `rest` is within 1e-3 ..= f64::MAX, so the exponent fits an i32.
    let exponent = rest.log10().floor() as i32;
    // Candidates around the estimated exponent, so that rounding in log10
    // never leaves the axis below the largest value.
    let nice = (exponent - 1..=exponent + 1)
        .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * pow10(e) * scale))
        .filter(|c| c.is_finite() && *c >= largest)
        .fold(f64::INFINITY, f64::min);
    if nice.is_finite() { nice } else { largest }
}

/// 10^e, exact for |e| ≤ 22 (so 0.1 is the literal 0.1).
fn pow10(e: i32) -> f64 {
    if e >= 0 {
        10f64.powi(e)
    } else {
        1.0 / 10f64.powi(e.saturating_neg())
    }
}

/// Appends `s` XML-escaped (text or a double- or single-quoted attribute
/// value); characters XML does not allow (most control characters) become
/// U+FFFD.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t'
            | '\n'
            | '\r'
            | '\u{20}'..='\u{D7FF}'
            | '\u{E000}'..='\u{FFFD}'
            | '\u{10000}'..='\u{10FFFF}' => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Whether `c` is a character XML 1.0 allows.
    fn xml_char(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
    }

    fn name_ok(name: &str) -> Result<(), String> {
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_' || c == ':');
        if first_ok && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '-' | '.')) {
            Ok(())
        } else {
            Err(format!("bad name {name:?}"))
        }
    }

    /// Checks the character data `s` (text or attribute value): XML
    /// characters only, no `<`, every `&` a known or numeric reference.
    fn chars_ok(s: &str) -> Result<(), String> {
        if let Some(c) = s.chars().find(|&c| !xml_char(c) || c == '<') {
            return Err(format!("{c:?} in character data"));
        }
        let mut rest = s;
        while let Some(at) = rest.find('&') {
            let after = &rest[at + 1..];
            let end = after.find(';').ok_or("unterminated reference")?;
            let reference = &after[..end];
            let ok = match reference.strip_prefix('#') {
                Some(num) => {
                    let code = match num.strip_prefix('x') {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => num.parse().ok(),
                    };
                    code.and_then(char::from_u32).is_some_and(xml_char)
                }
                None => matches!(reference, "amp" | "lt" | "gt" | "quot" | "apos"),
            };
            if !ok {
                return Err(format!("bad reference &{reference};"));
            }
            rest = &after[end + 1..];
        }
        Ok(())
    }

    /// A small well-formedness check for what `line_chart` writes: elements,
    /// quoted attributes and character data (no comments, CDATA,
    /// declarations or processing instructions), one root.
    fn well_formed(doc: &str) -> Result<(), String> {
        let mut open: Vec<&str> = Vec::new();
        let mut roots = 0;
        let mut rest = doc;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("</") {
                let end = after.find('>').ok_or("unterminated end tag")?;
                let name = after[..end].trim_end();
                if open.pop() != Some(name) {
                    return Err(format!("unexpected </{name}>"));
                }
                rest = &after[end + 1..];
            } else if let Some(after) = rest.strip_prefix('<') {
                let name_end = after
                    .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
                    .ok_or("unterminated start tag")?;
                let name = &after[..name_end];
                name_ok(name)?;
                if open.is_empty() {
                    roots += 1;
                    if roots > 1 {
                        return Err("more than one root element".into());
                    }
                }
                let mut tag = &after[name_end..];
                let mut attributes: Vec<&str> = Vec::new();
                loop {
                    let trimmed = tag.trim_start();
                    if let Some(r) = trimmed.strip_prefix("/>") {
                        rest = r;
                        break;
                    }
                    if let Some(r) = trimmed.strip_prefix('>') {
                        open.push(name);
                        rest = r;
                        break;
                    }
                    if trimmed.len() == tag.len() {
                        return Err(format!("no space before an attribute in <{name}>"));
                    }
                    let eq = trimmed.find('=').ok_or("attribute without a value")?;
                    let attribute = &trimmed[..eq];
                    name_ok(attribute)?;
                    if attributes.contains(&attribute) {
                        return Err(format!("duplicate attribute {attribute}"));
                    }
                    attributes.push(attribute);
                    let value = &trimmed[eq + 1..];
                    let quote = value.chars().next().filter(|q| *q == '"' || *q == '\'');
                    let quote = quote.ok_or("unquoted attribute value")?;
                    let value = &value[1..];
                    let end = value.find(quote).ok_or("unterminated attribute value")?;
                    chars_ok(&value[..end])?;
                    tag = &value[end + 1..];
                }
            } else {
                let end = rest.find('<').unwrap_or(rest.len());
                let text = &rest[..end];
                if open.is_empty() && !text.trim().is_empty() {
                    return Err("text outside the root element".into());
                }
                if text.contains("]]>") {
                    return Err("]]> in text".into());
                }
                chars_ok(text)?;
                rest = &rest[end..];
            }
        }
        match (roots, open.last()) {
            (0, _) => Err("no root element".into()),
            (_, Some(name)) => Err(format!("<{name}> not closed")),
            _ => Ok(()),
        }
    }

    #[test]
    fn the_checker_rejects_what_is_not_well_formed() {
        assert!(well_formed(r#"<a x="1"><b/>t &amp; &#39; &#x41;</a>"#).is_ok());
        for bad in [
            "<a><b></a></b>",
            "<a>",
            "<a/><b/>",
            "text<a/>",
            r#"<a x="<"/>"#,
            r#"<a x="1" x="2"/>"#,
            r#"<a x="1"y="2"/>"#,
            "<a x=1/>",
            "<a>&foo;</a>",
            "<a>&amp</a>",
            "<a>&#0;</a>",
            "<a>\u{1}</a>",
            "<a>1 < 2</a>",
            "<1a/>",
            "",
        ] {
            assert!(well_formed(bad).is_err(), "{bad:?} passed");
        }
    }

    /// The `points` of every polyline, as numbers.
    fn points(svg: &str) -> Vec<Vec<(f64, f64)>> {
        svg.split("<polyline")
            .skip(1)
            .map(|p| {
                let start = p.find("points=\"").expect("a points attribute") + 8;
                let list = &p[start..start + p[start..].find('"').expect("closed")];
                list.split(' ')
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').expect("x,y");
                        (x.parse().expect("x"), y.parse().expect("y"))
                    })
                    .collect()
            })
            .collect()
    }

    /// The viewBox's width and height.
    fn view_box(svg: &str) -> (f64, f64) {
        let start = svg.find("viewBox=\"0 0 ").expect("a viewBox") + 13;
        let (w, rest) = svg[start..].split_once(' ').expect("width");
        let h = &rest[..rest.find('"').expect("closed")];
        (w.parse().expect("w"), h.parse().expect("h"))
    }

    #[test]
    fn a_chart_is_well_formed_and_accessible() {
        let served = [1.0, 3.0, 7.0, 2.0];
        let fetched = [0.0, 1.0, 0.5, 0.0];
        let svg = line_chart(
            "Requests per second",
            "/s",
            &[
                Series {
                    label: "hits",
                    class: "s-hit",
                    values: &served,
                },
                Series {
                    label: "misses",
                    class: "s-miss",
                    values: &fetched,
                },
            ],
            600,
            200,
        );
        well_formed(&svg).unwrap();
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert!(svg.contains(r#"viewBox="0 0 600 200""#), "{svg}");
        assert!(svg.contains(r#"class="chart""#) && svg.contains(r#"role="img""#));
        assert!(svg.contains("<title>Requests per second</title>"));
        assert!(
            svg.contains(">hits</text>") && svg.contains(">misses</text>"),
            "legend"
        );
        assert!(
            svg.contains(r#"<polyline class="s-hit""#)
                && svg.contains(r#"<polyline class="s-miss""#)
        );
        // Largest value 7 → axis max 10, half 5.
        assert!(
            svg.contains(">10/s</text>")
                && svg.contains(">5/s</text>")
                && svg.contains(">0/s</text>"),
            "{svg}"
        );
        // No colours of its own.
        assert!(
            !svg.contains('#') && !svg.contains("rgb") && !svg.contains("stroke=\"black"),
            "{svg}"
        );
        // 7 of 10 is 70% up the plot; the points span the plot's width.
        let lines = points(&svg);
        assert_eq!(lines.len(), 2);
        let hits = &lines[0];
        assert_eq!(hits.len(), 4);
        let (x0, y0) = hits[0];
        let (x3, y3) = hits[3];
        assert!(x0 < x3 && x3 <= 600.0 && x0 > 0.0);
        let zero_y = lines[1][0].1;
        let y7 = hits[2].1;
        let ten_y = zero_y - (zero_y - y7) / 0.7;
        assert!(
            ten_y > 0.0 && ten_y < y0 && y0 > y3 && y3 < zero_y,
            "{hits:?}"
        );
        assert!(
            ((zero_y - y0) / (zero_y - y3) - 0.5).abs() < 0.02,
            "1 is half of 2"
        );
    }

    #[test]
    fn texts_are_escaped() {
        let svg = line_chart(
            "a<b & \"c\" 'd'",
            "<&\">",
            &[Series {
                label: "<&\">",
                class: "x\" onload=\"y",
                values: &[1.0, 2.0],
            }],
            300,
            120,
        );
        well_formed(&svg).unwrap();
        assert!(
            svg.contains("<title>a&lt;b &amp; &quot;c&quot; &#39;d&#39;</title>"),
            "{svg}"
        );
        assert!(
            svg.contains(">&lt;&amp;&quot;&gt;</text>"),
            "legend escaped: {svg}"
        );
        assert!(
            svg.contains("2&lt;&amp;&quot;&gt;</text>"),
            "axis label escaped: {svg}"
        );
        assert!(svg.contains(r#"class="x&quot; onload=&quot;y""#), "{svg}");
        assert!(!svg.contains("<&") && !svg.contains(" onload=\"y"));
        // Control characters XML forbids are replaced, not passed through.
        let svg = line_chart(
            "bell\u{7}",
            "",
            &[Series {
                label: "nul\0",
                class: "c",
                values: &[],
            }],
            300,
            120,
        );
        well_formed(&svg).unwrap();
        assert!(svg.contains("bell\u{FFFD}") && svg.contains("nul\u{FFFD}"));
    }

    #[test]
    fn empty_zero_and_non_finite_series_draw_a_valid_chart() {
        for series in [
            vec![],
            vec![Series {
                label: "none",
                class: "a",
                values: &[],
            }],
            vec![Series {
                label: "zeros",
                class: "a",
                values: &[0.0, 0.0, 0.0],
            }],
            vec![Series {
                label: "bad",
                class: "a",
                values: &[f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -5.0],
            }],
        ] {
            let svg = line_chart("t", "B", &series, 400, 150);
            well_formed(&svg).unwrap();
            assert!(
                svg.contains(">1 B</text>") && svg.contains(">0.5 B</text>"),
                "max 1: {svg}"
            );
            for line in points(&svg) {
                let zero = line[0].1;
                assert!(
                    line.iter().all(|&(_, y)| y == zero),
                    "all at zero: {line:?}"
                );
            }
        }
        // One value: a flat line across the plot.
        let svg = line_chart(
            "t",
            "",
            &[Series {
                label: "one",
                class: "a",
                values: &[3.0],
            }],
            400,
            150,
        );
        let lines = points(&svg);
        assert_eq!(lines[0].len(), 2);
        assert_eq!(lines[0][0].1, lines[0][1].1);
        assert!(svg.contains(">5</text>") && svg.contains(">2.5</text>"));
    }

    #[test]
    fn byte_axes_use_binary_prefixes() {
        let values = [1_000.0, 5_000_000.0];
        let svg = line_chart(
            "bytes",
            "B",
            &[Series {
                label: "served",
                class: "s",
                values: &values,
            }],
            400,
            150,
        );
        assert!(
            svg.contains(">5 MiB</text>")
                && svg.contains(">2.5 MiB</text>")
                && svg.contains(">0 B</text>"),
            "{svg}"
        );
        let svg = line_chart(
            "bytes",
            "B/s",
            &[Series {
                label: "served",
                class: "s",
                values: &[700.0],
            }],
            400,
            150,
        );
        assert!(
            svg.contains(">1000 B/s</text>") && svg.contains(">500 B/s</text>"),
            "{svg}"
        );
        let svg = line_chart(
            "ratio",
            "%",
            &[Series {
                label: "hit",
                class: "s",
                values: &[93.0],
            }],
            400,
            150,
        );
        assert!(
            svg.contains(">100%</text>") && svg.contains(">50%</text>"),
            "{svg}"
        );
        let svg = line_chart(
            "latency",
            "ms",
            &[Series {
                label: "p99",
                class: "s",
                values: &[0.3],
            }],
            400,
            150,
        );
        assert!(svg.contains(">0.5 ms</text>"), "{svg}");
    }

    #[test]
    fn the_axis_max_is_nice() {
        for (largest, expected) in [
            (0.0, 1.0),
            (f64::NAN, 1.0),
            (-3.0, 1.0),
            (1.0, 1.0),
            (1.01, 2.0),
            (3.0, 5.0),
            (7.0, 10.0),
            (10.0, 10.0),
            (150.0, 200.0),
            (0.07, 0.1),
            (0.3, 0.5),
            (1e-9, 0.001),
            (1000.0, 1000.0),
            (123_456.0, 200_000.0),
        ] {
            let got = nice_max(largest, false);
            assert!(
                (got - expected).abs() <= expected * 1e-9,
                "nice_max({largest}) = {got}, not {expected}"
            );
        }
        for (largest, expected) in [
            (0.0, 1.0),
            (700.0, 1000.0),
            (1024.0, 1024.0),
            (1500.0, 2048.0),
            (5_000_000.0, 5.0 * 1048576.0),
            (3e9, 5.0 * 1073741824.0),
        ] {
            let got = nice_max(largest, true);
            assert!(
                (got - expected).abs() <= expected * 1e-9,
                "bytes nice_max({largest}) = {got}, not {expected}"
            );
        }
        assert!(nice_max(f64::MAX, false) >= f64::MAX);
        assert!(nice_max(f64::MAX, true) >= f64::MAX);
    }

    #[test]
    fn bytes_are_formatted_with_binary_prefixes() {
        for (n, expected) in [
            (0, "0 B"),
            (1, "1 B"),
            (1023, "1023 B"),
            (1024, "1 KiB"),
            (1536, "1.5 KiB"),
            (10 * 1024 + 512, "10.5 KiB"),
            (150 * 1024 + 700, "151 KiB"),
            (1024 * 1024 - 1, "1 MiB"),
            (3_435_973_837, "3.2 GiB"),
            (5 << 40, "5 TiB"),
            (u64::MAX, "16 EiB"),
        ] {
            assert_eq!(format_bytes(n), expected, "{n}");
        }
        assert_eq!(format_bytes_f64(0.5), "0.5 B");
        assert_eq!(format_bytes_f64(f64::NAN), "0 B");
        assert_eq!(format_bytes_f64(-1.0), "0 B");
        assert_eq!(
            format_bytes_f64(f64::MAX),
            format!("{} EiB", one_decimal(f64::MAX / 1024f64.powi(6)))
        );
    }

    #[test]
    fn rates_are_formatted_compactly() {
        for (rate, expected) in [
            (0.0, "0/s"),
            (f64::NAN, "0/s"),
            (f64::INFINITY, "0/s"),
            (-3.0, "0/s"),
            (3.0, "3/s"),
            (12.5, "12.5/s"),
            (0.5, "0.5/s"),
            (1.0 / 60.0, "0.0167/s"),
            (123.4, "123/s"),
            (999.7, "1k/s"),
            (1234.0, "1.23k/s"),
            (4e6, "4M/s"),
            (2.5e9, "2.5G/s"),
            (1e13, "10T/s"),
            (1e20, "1.00e20/s"),
            (1e-12, "0/s"),
        ] {
            assert_eq!(format_rate(rate), expected, "{rate}");
        }
    }

    proptest! {
        #[test]
        fn any_input_draws_a_well_formed_chart_inside_its_view_box(
            title in any::<String>(),
            unit in prop_oneof![Just(String::new()), Just("B".to_owned()), Just("/s".to_owned()), any::<String>()],
            series in prop::collection::vec(
                (any::<String>(), any::<String>(), prop::collection::vec(
                    prop_oneof![any::<f64>(), 0.0..1e6, Just(0.0)], 0..40)),
                0..5,
            ),
            width in 1u32..=u32::MAX,
            height in 1u32..=u32::MAX,
        ) {
            let series: Vec<Series> = series
                .iter()
                .map(|(label, class, values)| Series { label, class, values })
                .collect();
            let svg = line_chart(&title, &unit, &series, width, height);
            prop_assert!(well_formed(&svg).is_ok(), "{:?}: {}", well_formed(&svg), svg);
            let (w, h) = view_box(&svg);
            let lines = points(&svg);
            prop_assert_eq!(lines.len(), series.iter().filter(|s| !s.values.is_empty()).count());
            for line in lines {
                for (x, y) in line {
                    prop_assert!((0.0..=w).contains(&x) && (0.0..=h).contains(&y), "({x}, {y}) outside {w}×{h}");
                }
            }
        }
    }
}
