//! Progress display on stderr, hidden when it is not a terminal.

use std::borrow::Cow;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A byte-count bar (bytes, rate, ETA) for `total` bytes, or a hidden one.
pub(crate) fn bytes(
    total: u64,
    message: impl Into<Cow<'static, str>>,
    visible: bool,
) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), target(visible));
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .expect("valid progress template")
        .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

/// A ticking spinner with elapsed time, for steps of unknown length.
pub(crate) fn spinner(message: impl Into<Cow<'static, str>>, visible: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, target(visible));
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .expect("valid spinner template"),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// stderr when visible (indicatif itself hides it when stderr is not a
/// terminal), nowhere otherwise.
fn target(visible: bool) -> ProgressDrawTarget {
    if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}
