//! What the command line prints: aligned tables for people, one JSON object
//! per line for scripts.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;

use super::table::RowOut;

/// Where output goes, and in which form.
#[derive(Clone, Copy, Debug)]
pub(super) struct Out {
    pub json: bool,
    /// Now, ms since the epoch (for ages).
    pub now: i64,
}

/// `text` fit to print for a person: every control character (C0, DEL,
/// C1) and every bidirectional override or isolate written out as
/// `\u{..}`. What a store holds (a caller's name in `updated_by`, a key, a
/// value, a table's name read from a file) reaches a terminal through the
/// command line, and a name chosen by a web user must not be able to move
/// the cursor, retitle the window, write the clipboard or reorder what an
/// operator reads. Text without such characters is returned as it is.
///
/// ```
/// use kv_runtime::cli::printable;
///
/// assert_eq!(printable("ada"), "ada");
/// assert_eq!(printable("ada\u{1b}]0;owned\u{7}"), "ada\\u{1b}]0;owned\\u{7}");
/// ```
pub fn printable(text: &str) -> Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Writes `text` to stdout; a closed pipe (`| head`) is not an error.
pub(super) fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// One JSON object on a line of its own.
pub(super) fn json_line(value: &impl serde::Serialize) {
    let text = serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    print(&format!("{text}\n"));
}

/// `headers` and `rows`, each column as wide as its widest cell; the last
/// column is not padded.
pub(super) fn aligned(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            text.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push('\n');
    }
    text
}

/// How long ago `at` was, in the largest whole unit: `42s`, `5m`, `3h`,
/// `12d`; `now` for the future.
pub(super) fn age(now: i64, at: i64) -> String {
    if at > now {
        return "now".to_owned();
    }
    match (now - at) / 1000 {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// `text` cut to `max` characters, with `...` when cut.
fn cut(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut short: String = text.chars().take(max.saturating_sub(3)).collect();
    short.push_str("...");
    short
}

/// Rows as a table (`KEY VERSION AGE BY [DELETED] VALUE`), values cut to
/// `value_width` characters (`None`: whole), or as JSON lines.
pub(super) fn rows(out: Out, rows: &[RowOut], deleted_column: bool, value_width: Option<usize>) {
    if out.json {
        for row in rows {
            json_line(row);
        }
        return;
    }
    let mut headers = vec!["KEY", "VERSION", "AGE", "BY"];
    if deleted_column {
        headers.push("DELETED");
    }
    headers.push("VALUE");
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells = vec![
                printable(&r.key).into_owned(),
                r.updated_at.to_string(),
                age(out.now, r.updated_at),
                r.updated_by
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), |by| printable(by).into_owned()),
            ];
            if deleted_column {
                cells.push(
                    r.deleted_at
                        .map_or_else(|| "-".to_owned(), |at| format!("{} ago", age(out.now, at))),
                );
            }
            let value = printable(&r.value.to_string()).into_owned();
            cells.push(match value_width {
                Some(width) => cut(value, width),
                None => value,
            });
            cells
        })
        .collect();
    print(&aligned(&headers, &cells));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_ages_read() {
        let text = aligned(
            &["KEY", "VALUE"],
            &[
                vec!["banner".into(), "{}".into()],
                vec!["a".into(), "1".into()],
            ],
        );
        assert_eq!(text, "KEY     VALUE\nbanner  {}\na       1\n");
        assert_eq!(age(100_000, 58_000), "42s");
        assert_eq!(age(4 * 3_600_000, 0), "4h");
        assert_eq!(age(0, 5), "now");
        assert_eq!(cut("abcdef".into(), 5), "ab...");
    }
}
