//! Progress bars for long transfers: drawn on stderr, and only when both
//! stdout and stderr are terminals (not in scripts, pipes or logs; not when
//! an export goes to stdout).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Whether bars are drawn.
pub fn enabled() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// A bar of `len` rows for `what` (hidden when [`enabled`] is false, or
/// when `show` is false).
pub fn bar(show: bool, len: u64, what: &str) -> ProgressBar {
    if !show || !enabled() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len).with_message(what.to_owned());
    if let Ok(style) =
        ProgressStyle::with_template("{msg:24} {wide_bar} {pos}/{len} rows, {per_sec}, {eta} left")
    {
        bar.set_style(style);
    }
    bar
}
