//! `apiary-backend users ...`: managing dashboard operators on the data dir directly, for the
//! machine's administrator (no login needed, like the data dir's own files).

use std::io::BufRead;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::operator_accounts;
use crate::store::operators::{OperatorStore, Role};
use crate::store::sqlite::SqliteStore;

/// Where the data dir is.
#[derive(Args, Debug)]
pub struct UsersOptions {
    /// Data directory of the backend
    #[arg(long, env = "APIARY_DATA_DIR", default_value = "./apiary-data")]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// List operators and their roles
    List,
    /// Add an operator; the password is read from stdin (one line)
    Add {
        name: String,
        /// admin (everything) or viewer (read only)
        #[arg(long, default_value = "admin")]
        role: String,
    },
    /// Set an operator's password from stdin (one line) and end its sessions
    Passwd { name: String },
}

/// Runs a `users` command, returning what to print.
pub async fn run(opts: UsersOptions) -> Result<String, String> {
    let db = opts.data_dir.join("apiary.db");
    if !db.exists() {
        return Err(format!(
            "{} does not exist: start `apiary-backend serve --data-dir {}` once first",
            db.display(),
            opts.data_dir.display()
        ));
    }
    let store = SqliteStore::open(&db, false).map_err(|e| e.to_string())?;
    match opts.command {
        UsersCommand::List => {
            let mut out = String::from("NAME\tROLE\n");
            for o in store.list_operators().await.map_err(|e| e.to_string())? {
                out.push_str(&format!("{}\t{}\n", o.username, o.role.as_str()));
            }
            Ok(out)
        }
        UsersCommand::Add { name, role } => {
            let role = Role::parse(&role)
                .ok_or_else(|| format!("unknown role {role:?}: use admin or viewer"))?;
            let password = read_password()?;
            operator_accounts::add(&store, &name, &password, role)
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!("added {name} ({})\n", role.as_str()))
        }
        UsersCommand::Passwd { name } => {
            let password = read_password()?;
            if operator_accounts::set_password(&store, &name, &password)
                .await
                .map_err(|e| e.to_string())?
            {
                Ok(format!("password of {name} changed; its sessions ended\n"))
            } else {
                Err(format!("no operator {name}"))
            }
        }
    }
}

fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
