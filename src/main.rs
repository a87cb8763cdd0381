//! The `cruddur-infra` binary: parses the command line, installs the diagnostic renderer, and
//! maps the outcome to an exit code (0 success, 1 error, 2 changes with --detailed-exitcode,
//! 130 or 143 when SIGINT or SIGTERM stopped the work).

use std::process::ExitCode;

use miette::{GraphicalTheme, MietteHandlerOpts};

fn main() -> ExitCode {
    // A usage error exits 1, as every error does: 2 means "changes" to plan --detailed-exitcode.
    let cli = match cruddur_infra::cli::Cli::try_parse_args() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    let plain = !cruddur_infra::cli::style::stderr_enabled(cli.no_color);
    miette::set_hook(Box::new(move |_| {
        let opts = MietteHandlerOpts::new().terminal_links(false).width(100);
        let opts = if plain { opts.graphical_theme(GraphicalTheme::unicode_nocolor()) } else { opts };
        Box::new(opts.build())
    }))
    .expect("the hook is installed once, before any error is rendered");
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(cli.run()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{:?}", miette::Report::new(err));
            ExitCode::FAILURE
        }
    };
    // A command a signal stopped says so in its exit code (130 or 143), as shells and CI
    // runners expect, whatever it finished before stopping.
    cruddur_infra::cli::signals::stopped_by().map_or(code, |s| ExitCode::from(s.exit_code()))
}
