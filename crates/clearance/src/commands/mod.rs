//! One module per subcommand; `run` dispatches.

mod check;
mod decide;
mod init;
mod input;
mod test;

use crate::{
    cli::{Cli, Command},
    exit::Exit,
};

pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Init { dir } => init::run(&dir),
        Command::Check { dir, format } => check::run(&dir, format),
        Command::Test { dir, verbose } => test::run(&dir, verbose),
        Command::Decide {
            dir,
            request,
            facts,
            explain,
        } => decide::run(&dir, &request, facts.as_deref(), explain),
    }
}
