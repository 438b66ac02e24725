//! Command-line subcommands other than running the switch. Each returns its
//! output as a `String` (main prints it), so tests need no process.

pub mod agents;
pub mod calls;
pub mod export;
pub mod history;
pub mod reload;

/// Rows as the `--json` output: one pretty-printed array and a newline.
pub fn json<T: serde::Serialize>(rows: &T) -> Result<String, serde_json::Error> {
    let mut out = serde_json::to_string_pretty(rows)?;
    out.push('\n');
    Ok(out)
}

/// A plain-text table: a header row and rows, columns padded to their widest
/// cell (by chars, which suits names with accents), two spaces between, no
/// trailing blanks.
pub fn table<const N: usize>(head: [&str; N], rows: &[[String; N]]) -> String {
    use std::fmt::Write as _;
    let mut widths = head.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let head = head.map(str::to_owned);
    let mut out = String::new();
    for row in std::iter::once(&head).chain(rows) {
        let mut text = String::new();
        for (cell, w) in row.iter().zip(widths) {
            let _ = write!(text, "{cell:<w$}  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}
