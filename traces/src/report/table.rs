//! One table model, five renderings: every table the offline tools print is a [`Tab`]
//! of typed cells with stable column keys, written as a text table, CSV, JSON, Markdown
//! or HTML. Machine formats (CSV, JSON) carry raw numbers under the keys documented in
//! `docs/report-columns.md`; human formats show a subset with units, percentages and
//! `value ± ci`.

use std::fmt::Write as _;
use std::io::{self, Write};

use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};

/// A cell. `Num(NaN)` means "not available" (empty in CSV, `null` in JSON, "n/a" in text).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(u64),
    Num(f64),
    Bool(bool),
}

impl Cell {
    pub fn opt(v: Option<f64>) -> Cell {
        Cell::Num(v.unwrap_or(f64::NAN))
    }

    pub fn as_f64(&self) -> f64 {
        match self {
            Cell::Int(i) => *i as f64,
            Cell::Num(x) => *x,
            _ => f64::NAN,
        }
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }
}
impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}
impl From<u64> for Cell {
    fn from(v: u64) -> Cell {
        Cell::Int(v)
    }
}
impl From<f64> for Cell {
    fn from(v: f64) -> Cell {
        Cell::Num(v)
    }
}
impl From<bool> for Cell {
    fn from(v: bool) -> Cell {
        Cell::Bool(v)
    }
}

/// How a human rendering shows a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Show {
    /// Only in CSV / JSON.
    Hidden,
    /// Fixed decimals.
    Fixed(usize),
    /// Three significant digits (ratios spanning decades).
    Sig3,
    /// A 0..1 share as a percentage with one decimal.
    Percent,
    /// A signed relative change (0.05 -> "+5.0%").
    Change,
    Plain,
}

#[derive(Debug, Clone)]
pub struct Column {
    /// Stable machine name (CSV header, JSON key).
    pub key: &'static str,
    /// Human title, with the unit.
    pub title: &'static str,
    pub show: Show,
    /// Key of the column holding this one's 95% CI half-width, shown as `v ± ci`.
    pub ci: Option<&'static str>,
}

pub const fn col(key: &'static str, title: &'static str, show: Show) -> Column {
    Column { key, title, show, ci: None }
}

pub const fn col_ci(key: &'static str, title: &'static str, show: Show, ci: &'static str) -> Column {
    Column { key, title, show, ci: Some(ci) }
}

/// A table: a name (the JSON key / file section), columns and rows of cells.
#[derive(Debug, Clone)]
pub struct Tab {
    pub name: &'static str,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

/// Output format of `report` / `diff` / `tradeoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Md,
    Html,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Ok(match s {
            "table" => Format::Table,
            "csv" => Format::Csv,
            "json" => Format::Json,
            "md" | "markdown" => Format::Md,
            "html" => Format::Html,
            _ => return Err(format!("unknown format `{s}`: expected table, csv, json, md or html")),
        })
    }
}

fn num_text(x: f64, show: Show) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    match show {
        Show::Fixed(d) => format!("{x:.d$}"),
        Show::Sig3 => sig3(x),
        Show::Percent => format!("{:.1}%", x * 100.0),
        Show::Change => format!("{:+.1}%", x * 100.0),
        Show::Plain | Show::Hidden => format!("{x}"),
    }
}

/// Three significant digits without exponent for everyday magnitudes.
pub fn sig3(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return if x == 0.0 { "0".into() } else { "n/a".into() };
    }
    let mag = x.abs().log10().floor() as i32;
    if !(-4..=5).contains(&mag) {
        return format!("{x:.2e}");
    }
    let d = (2 - mag).max(0) as usize;
    format!("{x:.d$}")
}

impl Tab {
    pub fn new(name: &'static str, columns: Vec<Column>) -> Tab {
        Tab { name, columns, rows: Vec::new() }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len(), "row width of table {}", self.name);
        self.rows.push(row);
    }

    fn index(&self, key: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.key == key)
    }

    /// The text of cell `i` of `row` for people (ci merged in).
    pub fn human_cell(&self, row: &[Cell], i: usize) -> String {
        let c = &self.columns[i];
        match &row[i] {
            Cell::Text(s) => s.clone(),
            Cell::Int(v) => v.to_string(),
            Cell::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
            Cell::Num(x) => {
                let ci = c.ci.and_then(|k| self.index(k)).map_or(f64::NAN, |j| row[j].as_f64());
                if ci.is_finite() && ci > 0.0 && x.is_finite() && !matches!(c.show, Show::Percent | Show::Change) {
                    // Value and CI to the CI's second significant digit.
                    let d = (1 - ci.log10().floor() as i32).clamp(0, 9) as usize;
                    format!("{x:.d$} ± {ci:.d$}")
                } else {
                    num_text(*x, c.show)
                }
            }
        }
    }

    /// Indices of the columns people see.
    pub fn visible(&self) -> Vec<usize> {
        (0..self.columns.len()).filter(|&i| self.columns[i].show != Show::Hidden).collect()
    }

    fn is_numeric(&self, i: usize) -> bool {
        self.rows.iter().any(|r| matches!(r[i], Cell::Int(_) | Cell::Num(_)))
    }

    pub fn to_text_table(&self) -> String {
        let vis = self.visible();
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED).set_header(vis.iter().map(|&i| self.columns[i].title));
        for r in &self.rows {
            t.add_row(vis.iter().map(|&i| self.human_cell(r, i)));
        }
        for (n, &i) in vis.iter().enumerate() {
            if self.is_numeric(i) {
                if let Some(c) = t.column_mut(n) {
                    c.set_cell_alignment(CellAlignment::Right);
                }
            }
        }
        t.to_string()
    }

    pub fn to_markdown(&self) -> String {
        let vis = self.visible();
        let esc = |s: &str| s.replace('|', "\\|");
        let mut s = String::new();
        let _ = writeln!(s, "| {} |", vis.iter().map(|&i| esc(self.columns[i].title)).collect::<Vec<_>>().join(" | "));
        let _ = writeln!(
            s,
            "|{}|",
            vis.iter().map(|&i| if self.is_numeric(i) { "---:" } else { "---" }).collect::<Vec<_>>().join("|")
        );
        for r in &self.rows {
            let cells: Vec<String> = vis.iter().map(|&i| esc(&self.human_cell(r, i))).collect();
            let _ = writeln!(s, "| {} |", cells.join(" | "));
        }
        s
    }

    pub fn to_html(&self) -> String {
        let vis = self.visible();
        let mut s = format!("<table class=\"data\" data-table=\"{}\">\n<thead><tr>", self.name);
        for &i in &vis {
            let _ = write!(s, "<th>{}</th>", html_escape(self.columns[i].title));
        }
        s.push_str("</tr></thead>\n<tbody>\n");
        for r in &self.rows {
            s.push_str("<tr>");
            for &i in &vis {
                let class = if self.is_numeric(i) { " class=\"num\"" } else { "" };
                let sort = match r[i] {
                    Cell::Int(v) => format!(" data-v=\"{v}\""),
                    Cell::Num(x) if x.is_finite() => format!(" data-v=\"{x}\""),
                    _ => String::new(),
                };
                let _ = write!(s, "<td{class}{sort}>{}</td>", html_escape(&self.human_cell(r, i)));
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</tbody></table>\n");
        s
    }

    pub fn write_csv<W: Write>(&self, out: W) -> io::Result<()> {
        let mut w = csv::Writer::from_writer(out);
        let ioe = |e: csv::Error| io::Error::other(e);
        w.write_record(self.columns.iter().map(|c| c.key)).map_err(ioe)?;
        for r in &self.rows {
            w.write_record(r.iter().map(csv_cell)).map_err(ioe)?;
        }
        w.flush()
    }

    /// Rows as JSON objects keyed by column key.
    pub fn to_json(&self) -> serde_json::Value {
        let rows = self
            .rows
            .iter()
            .map(|r| {
                let mut m = serde_json::Map::new();
                for (c, v) in self.columns.iter().zip(r) {
                    m.insert(c.key.to_string(), json_cell(v));
                }
                serde_json::Value::Object(m)
            })
            .collect();
        serde_json::Value::Array(rows)
    }
}

fn csv_cell(c: &Cell) -> String {
    match c {
        Cell::Text(s) => s.clone(),
        Cell::Int(v) => v.to_string(),
        Cell::Num(x) if x.is_finite() => format!("{x}"),
        Cell::Num(_) => String::new(),
        Cell::Bool(b) => b.to_string(),
    }
}

fn json_cell(c: &Cell) -> serde_json::Value {
    match c {
        Cell::Text(s) => s.clone().into(),
        Cell::Int(v) => (*v).into(),
        Cell::Num(x) => serde_json::Number::from_f64(*x).map_or(serde_json::Value::Null, serde_json::Value::Number),
        Cell::Bool(b) => (*b).into(),
    }
}

pub fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tab {
        let mut t = Tab::new(
            "t",
            vec![
                col("name", "name", Show::Plain),
                col_ci("e", "energy (mJ)", Show::Fixed(2), "e_ci"),
                col("e_ci", "", Show::Hidden),
                col("share", "share", Show::Percent),
            ],
        );
        t.push(vec!["a,b".into(), 1.5.into(), 0.25.into(), 0.5.into()]);
        t.push(vec!["c|d".into(), f64::NAN.into(), f64::NAN.into(), 0.125.into()]);
        t
    }

    #[test]
    fn csv_quotes_and_leaves_missing_values_empty() {
        let mut v = Vec::new();
        sample().write_csv(&mut v).unwrap();
        assert_eq!(String::from_utf8(v).unwrap(), "name,e,e_ci,share\n\"a,b\",1.5,0.25,0.5\nc|d,,,0.125\n");
    }

    #[test]
    fn json_uses_keys_and_null_for_missing() {
        let j = sample().to_json();
        assert_eq!(j[0]["e"], 1.5);
        assert_eq!(j[0]["name"], "a,b");
        assert!(j[1]["e"].is_null());
    }

    #[test]
    fn human_formats_merge_ci_and_hide_hidden_columns() {
        let t = sample();
        assert_eq!(t.human_cell(&t.rows[0], 1), "1.50 ± 0.25");
        let mut u = t.clone();
        u.rows[0][2] = Cell::Num(0.00494);
        assert_eq!(u.human_cell(&u.rows[0], 1), "1.5000 ± 0.0049", "value to the CI's 2nd significant digit");
        assert_eq!(t.human_cell(&t.rows[1], 1), "n/a");
        assert_eq!(t.human_cell(&t.rows[1], 3), "12.5%");
        let md = t.to_markdown();
        assert!(md.starts_with("| name | energy (mJ) | share |\n|---|---:|---:|\n"), "{md}");
        assert!(md.contains("c\\|d"), "pipes escaped: {md}");
        assert!(!t.to_text_table().contains("e_ci"));
    }

    #[test]
    fn sig3_keeps_three_significant_digits() {
        assert_eq!(sig3(123.456), "123");
        assert_eq!(sig3(1.23456), "1.23");
        assert_eq!(sig3(0.0123456), "0.0123");
        assert_eq!(sig3(12345.6), "12346");
        assert_eq!(sig3(174144349.0), "1.74e8");
    }
}
