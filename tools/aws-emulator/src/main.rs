//! `aws-emulator`: the fault and strict proxy in front of a running moto server, standalone.
//!
//! ```text
//! aws-emulator --upstream 5066 --port 5067 --clocks aws
//! ```
//!
//! Point a client's endpoint at `http://127.0.0.1:PORT`; `GET /_emulator/report` says how many
//! requests passed and which strict rules refused what, `POST /_emulator/reset` forgets it all
//! (call it after resetting moto). It prints `listening on URL` once it accepts connections and
//! runs until killed.

use std::time::Duration;

use aws_emulator::proxy::{Mode, Proxy};
use aws_emulator::strict::Clocks;
use clap::Parser;

#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The port of the moto server on 127.0.0.1.
    #[arg(long)]
    upstream: u16,
    /// The port to listen on (0: a free one, printed).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Play AWS's strict rules with these clocks: `aws` (a distribution deploys in a minute) or
    /// `short` (the tests' clocks). Without it, the proxy forwards faithfully.
    #[arg(long)]
    clocks: Option<Clocks>,
    /// Seeded faults: the probability that a request fails before it reaches moto (throttled,
    /// a 5xx, or a reset connection).
    #[arg(long, default_value_t = 0.0)]
    transient: f64,
    /// Seeded faults: the probability that moto does the work and the answer is lost.
    #[arg(long, default_value_t = 0.0)]
    lost: f64,
    /// Latency added to every forwarded request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() {
    let args = Args::parse();
    let mode = if args.transient > 0.0 || args.lost > 0.0 || args.latency_ms > 0 {
        Mode::Faults { transient: args.transient, lost: args.lost, latency: Duration::from_millis(args.latency_ms) }
    } else {
        Mode::Pass
    };
    let proxy = match Proxy::listen(args.port, args.upstream, mode, args.seed) {
        Ok(proxy) => proxy,
        Err(e) => {
            eprintln!("aws-emulator: cannot listen on 127.0.0.1:{}: {e}", args.port);
            std::process::exit(1);
        }
    };
    if let Some(clocks) = args.clocks {
        proxy.set_strict(clocks);
    }
    println!("listening on {}", proxy.endpoint());
    loop {
        std::thread::park();
    }
}
