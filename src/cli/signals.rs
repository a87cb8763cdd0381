//! Stop signals, as CI runners and terminals send them. The first SIGINT or SIGTERM stops new
//! work: the calls in flight finish and are recorded, the state is saved and the lock
//! released, and the command exits 130 (SIGINT) or 143 (SIGTERM). A second one exits at once:
//! the journal holds what was in flight, and the next command finishes it.

use std::sync::OnceLock;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The signal that stopped the command, if one did: one per process, as signals are.
static STOPPED_BY: OnceLock<Stop> = OnceLock::new();

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Interrupt,
    Terminate,
}

impl Stop {
    /// 128 + the signal's number, as shells report a command a signal ended.
    pub fn exit_code(self) -> u8 {
        match self {
            Stop::Interrupt => 130,
            Stop::Terminate => 143,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "Interrupt",
            Stop::Terminate => "SIGTERM",
        }
    }
}

/// Records that `stop` ended the command's work early: it decides the exit code. (Watch mode,
/// which a signal ends as its normal way out, does not.)
pub fn record(stop: Stop) {
    let _ = STOPPED_BY.set(stop);
}

/// The signal that stopped this command, if any: it decides the exit code.
pub fn stopped_by() -> Option<Stop> {
    STOPPED_BY.get().copied()
}

/// Both stop signals, listened to from now on.
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    pub fn listen() -> std::io::Result<Self> {
        Ok(Signals { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    /// The next stop signal.
    pub async fn next(&mut self) -> Option<Stop> {
        tokio::select! {
            got = self.interrupt.recv() => got.map(|()| Stop::Interrupt),
            got = self.terminate.recv() => got.map(|()| Stop::Terminate),
        }
    }

    /// Waits for the first signal and calls `stop` with it (which stops new work); on a
    /// second, exits at once.
    pub async fn stop_then_exit(mut self, doing: &str, stop: impl FnOnce(Stop)) {
        let Some(first) = self.next().await else { return };
        stop(first);
        eprintln!("\n{} received: {doing} Nothing new will start; a second interrupt exits at once.", first.name());
        if let Some(second) = self.next().await {
            eprintln!(
                "\n{} received again: exiting now. What was in flight is in the journal: the next command \
                 finishes it.",
                second.name()
            );
            std::process::exit(i32::from(second.exit_code()));
        }
    }
}
