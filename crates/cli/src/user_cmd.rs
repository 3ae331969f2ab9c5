//! `hashscan user add|disable|reset|role|list|token|tokens|revoke`: the review service's users,
//! managed on the machine that holds the data directory (there is no web
//! page for it: whoever can run this can read the database anyway).
//!
//! Passwords are read from stdin, one line, so that they stay out of the
//! shell history and the process list; every change is in the audit log.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use hashscan_review::{hash_password, new_api_token, ROLES};
use hashscan_store::review::Actor;

use crate::store_args::StoreArgs;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user; the password (at least 12 characters) is read from stdin.
    Add {
        /// Login name.
        name: String,
        /// analyst (works the queue), lead (also bulk decisions and the
        /// audit log) or admin.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(ROLES))]
        role: String,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Disable a user: no more logins, sessions or API tokens.
    Disable {
        /// Login name.
        name: String,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Set a new password (read from stdin) and end the user's sessions.
    Reset {
        /// Login name.
        name: String,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Change a user's role; it holds from their next request on.
    Role {
        /// Login name.
        name: String,
        /// The new role.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(ROLES))]
        role: String,
        #[command(flatten)]
        dir: DataDir,
    },
    /// List API tokens (never the tokens themselves): id, user, label, made, last used.
    Tokens {
        /// Only this user's.
        name: Option<String>,
        /// Print JSON Lines instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Revoke an API token by the id `user tokens` shows.
    Revoke {
        /// Token id.
        id: i64,
        #[command(flatten)]
        dir: DataDir,
    },
    /// List the users: name, role, whether disabled, when added.
    List {
        /// Print JSON Lines instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Make an API token for a user and print it (once; only its hash is kept).
    Token {
        /// Login name.
        name: String,
        /// What the token is for (shown in the audit log).
        #[arg(long)]
        label: String,
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(Args)]
pub struct DataDir {
    #[command(flatten)]
    store: StoreArgs,
}

/// Who runs the command, for the audit log.
fn actor() -> Actor {
    let who = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    Actor { name: format!("cli:{who}"), ip: None }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Unix ms as RFC 3339 to the second, for tables.
fn seconds(ms: i64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64))
        .to_string()
}

/// One line from `input` without its line end.
fn read_password(input: &mut impl BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    input.read_line(&mut line).context("cannot read the password from stdin")?;
    let p = line.trim_end_matches(['\n', '\r']).to_string();
    if p.is_empty() {
        anyhow::bail!("no password on stdin (give it as one line, e.g. from a password manager's pipe)");
    }
    Ok(p)
}

pub async fn run(cmd: UserCommand) -> anyhow::Result<ExitCode> {
    let stdin = std::io::stdin();
    run_with(cmd, &mut stdin.lock(), &mut std::io::stdout()).await
}

/// [`run`] with the password source and the output given (tests).
pub async fn run_with(cmd: UserCommand, input: &mut impl BufRead, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let store = match &cmd {
        UserCommand::Add { dir, .. }
        | UserCommand::Disable { dir, .. }
        | UserCommand::Reset { dir, .. }
        | UserCommand::Role { dir, .. }
        | UserCommand::Tokens { dir, .. }
        | UserCommand::Revoke { dir, .. }
        | UserCommand::List { dir, .. }
        | UserCommand::Token { dir, .. } => dir.store.open().await?,
    };
    match cmd {
        UserCommand::Add { name, role, .. } => {
            let name = name.trim().to_string();
            if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
                anyhow::bail!("a user name needs 1 to 100 bytes and no control characters");
            }
            let hash = hash_password(&read_password(input)?)?;
            if !store.add_user(&name, &role, &hash, actor(), now_ms()).await? {
                anyhow::bail!("user {name:?} exists already (use `hashscan user reset` for a new password)");
            }
            writeln!(out, "added {name} ({role})")?;
        }
        UserCommand::Disable { name, .. } => {
            if !store.set_user_disabled(&name, true, actor(), now_ms()).await? {
                anyhow::bail!("no user {name:?}");
            }
            writeln!(out, "disabled {name}; their sessions are ended and their tokens refused")?;
        }
        UserCommand::Reset { name, .. } => {
            if store.user(&name).await?.is_none() {
                anyhow::bail!("no user {name:?}");
            }
            let hash = hash_password(&read_password(input)?)?;
            if !store.set_password(&name, &hash, actor(), now_ms()).await? {
                anyhow::bail!("no user {name:?}");
            }
            writeln!(out, "new password for {name}; their sessions are ended")?;
        }
        UserCommand::Role { name, role, .. } => {
            if !store.set_role(&name, &role, actor(), now_ms()).await? {
                anyhow::bail!("no user {name:?}");
            }
            writeln!(out, "{name} is now {role}")?;
        }
        UserCommand::Tokens { name, json, .. } => {
            if let Some(n) = &name {
                if store.user(n).await?.is_none() {
                    anyhow::bail!("no user {n:?}");
                }
            }
            let tokens = store.tokens(name.as_deref()).await?;
            if json {
                for t in &tokens {
                    writeln!(out, "{}", serde_json::to_string(t)?)?;
                }
            } else {
                writeln!(out, "{:<6} {:<24} {:<20} {:<20} LAST USED", "ID", "USER", "MADE", "LABEL")?;
                for t in &tokens {
                    let used = t.last_used_at_ms.map_or_else(|| "never".to_string(), seconds);
                    let made = seconds(t.created_at_ms);
                    writeln!(out, "{:<6} {:<24} {made:<20} {:<20} {used}", t.id, t.user, t.label)?;
                }
            }
        }
        UserCommand::Revoke { id, .. } => {
            if !store.revoke_token(id, actor(), now_ms()).await? {
                anyhow::bail!("no API token with id {id} (see `hashscan user tokens`)");
            }
            writeln!(out, "revoked API token {id}")?;
        }
        UserCommand::List { json, .. } => {
            let users = store.users().await?;
            if json {
                for u in &users {
                    writeln!(out, "{}", serde_json::to_string(u)?)?;
                }
            } else {
                writeln!(out, "{:<24} {:<8} {:<9} ADDED", "NAME", "ROLE", "STATE")?;
                for u in &users {
                    let state = if u.disabled { "disabled" } else { "active" };
                    writeln!(out, "{:<24} {:<8} {:<9} {}", u.name, u.role, state, seconds(u.created_at_ms))?;
                }
            }
        }
        UserCommand::Token { name, label, .. } => {
            let label = label.trim().to_string();
            if label.is_empty() || label.len() > 200 {
                anyhow::bail!("--label needs 1 to 200 bytes");
            }
            let (token, hash) = new_api_token();
            if store.add_token(&name, &label, hash, actor(), now_ms()).await?.is_none() {
                anyhow::bail!("no user {name:?}");
            }
            eprintln!(
                "API token for {name} ({label}); it is shown only now, send it as `Authorization: Bearer TOKEN`:"
            );
            writeln!(out, "{token}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hits_cmd::db_path;
    use hashscan_store::{ReviewStore, SqliteStore};

    fn dir(d: &tempfile::TempDir) -> DataDir {
        DataDir { store: StoreArgs { data_dir: d.path().to_path_buf(), database_url: None } }
    }

    async fn run_in(cmd: UserCommand, stdin: &str) -> anyhow::Result<String> {
        let mut out = Vec::new();
        run_with(cmd, &mut stdin.as_bytes(), &mut out).await?;
        Ok(String::from_utf8(out)?)
    }

    #[tokio::test]
    async fn users_are_added_disabled_reset_and_given_tokens() {
        let d = tempfile::tempdir().unwrap();
        let add = |name: &str| UserCommand::Add { name: name.into(), role: "analyst".into(), dir: dir(&d) };
        let out = run_in(add("ann"), "a long enough password\n").await.unwrap();
        assert!(out.contains("added ann"), "{out}");
        let err = run_in(add("ann"), "a long enough password\n").await.unwrap_err();
        assert!(err.to_string().contains("exists already"), "{err}");
        let err = run_in(add("bob"), "short\n").await.unwrap_err();
        assert!(err.to_string().contains("at least 12"), "{err}");
        let err = run_in(add("bob"), "").await.unwrap_err();
        assert!(err.to_string().contains("no password"), "{err}");
        let store = SqliteStore::open(&db_path(d.path())).unwrap();
        let ann = store.user("ann").await.unwrap().unwrap();
        assert!(hashscan_review::verify_password("a long enough password", &ann.password_hash));
        assert!(store.user("bob").await.unwrap().is_none());

        run_in(UserCommand::Reset { name: "ann".into(), dir: dir(&d) }, "another long password\r\n").await.unwrap();
        let ann = store.user("ann").await.unwrap().unwrap();
        assert!(hashscan_review::verify_password("another long password", &ann.password_hash));

        let token =
            run_in(UserCommand::Token { name: "ann".into(), label: "ci".into(), dir: dir(&d) }, "").await.unwrap();
        let token = token.trim();
        assert!(token.starts_with("hst_"), "{token}");
        let found = store.user_for_token(hashscan_review::token_hash(token), 1).await.unwrap();
        assert_eq!(found.map(|u| u.name).as_deref(), Some("ann"));

        let list = run_in(UserCommand::List { json: false, dir: dir(&d) }, "").await.unwrap();
        assert!(list.lines().any(|l| l.starts_with("ann ") && l.contains("analyst") && l.contains("active")), "{list}");
        assert!(!list.contains("argon2"), "no password hash in the list: {list}");

        // Roles change; tokens are listed without their secret and revoked.
        let out =
            run_in(UserCommand::Role { name: "ann".into(), role: "lead".into(), dir: dir(&d) }, "").await.unwrap();
        assert!(out.contains("ann is now lead"), "{out}");
        assert_eq!(store.user("ann").await.unwrap().unwrap().role, "lead");
        let err =
            run_in(UserCommand::Role { name: "zed".into(), role: "lead".into(), dir: dir(&d) }, "").await.unwrap_err();
        assert!(err.to_string().contains("no user"), "{err}");
        let tokens = run_in(UserCommand::Tokens { name: None, json: true, dir: dir(&d) }, "").await.unwrap();
        let t: serde_json::Value = serde_json::from_str(tokens.lines().next().unwrap()).unwrap();
        assert_eq!((t["user"].as_str(), t["label"].as_str()), (Some("ann"), Some("ci")), "{tokens}");
        assert!(!tokens.contains(token), "a listed token is never the token: {tokens}");
        let table =
            run_in(UserCommand::Tokens { name: Some("ann".into()), json: false, dir: dir(&d) }, "").await.unwrap();
        assert!(table.lines().nth(1).is_some_and(|l| l.contains("ci")), "{table}");
        let err =
            run_in(UserCommand::Tokens { name: Some("zed".into()), json: false, dir: dir(&d) }, "").await.unwrap_err();
        assert!(err.to_string().contains("no user"), "{err}");
        let second =
            run_in(UserCommand::Token { name: "ann".into(), label: "spare".into(), dir: dir(&d) }, "").await.unwrap();
        let id = t["id"].as_i64().unwrap();
        run_in(UserCommand::Revoke { id, dir: dir(&d) }, "").await.unwrap();
        assert!(store.user_for_token(hashscan_review::token_hash(token), 2).await.unwrap().is_none(), "revoked");
        let err = run_in(UserCommand::Revoke { id, dir: dir(&d) }, "").await.unwrap_err();
        assert!(err.to_string().contains("no API token"), "{err}");
        let token = second.trim();
        assert!(store.user_for_token(hashscan_review::token_hash(token), 2).await.unwrap().is_some(), "others stay");

        run_in(UserCommand::Disable { name: "ann".into(), dir: dir(&d) }, "").await.unwrap();
        let list = run_in(UserCommand::List { json: true, dir: dir(&d) }, "").await.unwrap();
        let ann: serde_json::Value = serde_json::from_str(list.lines().next().unwrap()).unwrap();
        assert_eq!((ann["name"].as_str(), ann["disabled"].as_bool()), (Some("ann"), Some(true)), "{list}");
        assert!(ann.get("password_hash").is_none(), "{list}");
        assert!(store.user("ann").await.unwrap().unwrap().disabled);
        assert!(store.user_for_token(hashscan_review::token_hash(token), 2).await.unwrap().is_none());
        let err = run_in(UserCommand::Disable { name: "zed".into(), dir: dir(&d) }, "").await.unwrap_err();
        assert!(err.to_string().contains("no user"), "{err}");

        let log = store
            .audit(hashscan_store::review::AuditFilter { limit: 50, oldest_first: true, ..Default::default() })
            .await
            .unwrap();
        let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            ["user_add", "user_reset", "user_token", "user_role", "user_token", "token_revoke", "user_disable"]
        );
        assert!(log.iter().all(|e| e.actor.starts_with("cli:")));
        assert!(!format!("{log:?}").contains(token), "the token is never logged");
    }
}
