//! Log forwarding across the plugin boundary.
//!
//! Each plugin carries its own copy of `tracing` with its own global dispatcher, so its events
//! would vanish. [`install_forwarder`] (called by the export macro's constructor shim) installs a
//! subscriber in the plugin that hands every event to the host's [`HostServices`].

use std::fmt::Write as _;
use std::sync::OnceLock;

use abi_stable::std_types::RStr;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::abi::HostServicesBox;

/// Level numbers used across the boundary (1 error … 5 trace).
pub(crate) fn level_number(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

static HOST: OnceLock<HostServicesBox> = OnceLock::new();

/// Installs the forwarding subscriber once per loaded library. Later calls (more instances of the
/// same plugin) keep the first host handle, which is the same host.
pub(crate) fn install_forwarder(host: HostServicesBox) {
    if HOST.set(host).is_err() {
        return;
    }
    let Some(host) = HOST.get() else { return };
    let max = host.max_level();
    let subscriber = tracing_subscriber::registry().with(Forward { max });
    // Fails only if the plugin installed its own global subscriber first, which is its choice.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

struct Forward {
    max: u8,
}

impl<S: Subscriber> Layer<S> for Forward {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        level_number(metadata.level()) <= self.max
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(host) = HOST.get() else { return };
        let mut text = MessageText::default();
        event.record(&mut text);
        host.log(
            level_number(event.metadata().level()),
            RStr::from_str(event.metadata().target()),
            RStr::from_str(&text.0),
        );
    }
}

/// Renders an event as `message key=value …`.
#[derive(Default)]
struct MessageText(String);

impl Visit for MessageText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            if self.0.is_empty() {
                let _ = write!(self.0, "{value:?}");
            } else {
                self.0 = format!("{value:?} {}", self.0);
            }
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{}={value}", field.name());
        }
    }
}
