//! [`OperatorStore`] on SQLite.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::operators::{Operator, OperatorStore, Role, Session};
use crate::store::{StoreError, Timestamp};

fn operator_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Operator> {
    let role: String = r.get(2)?;
    Ok(Operator {
        username: r.get(0)?,
        password_hash: r.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        created_at: r.get(3)?,
    })
}

#[async_trait]
impl OperatorStore for SqliteStore {
    async fn operator_count(&self) -> Result<i64, StoreError> {
        self.with(|c| Ok(c.query_row("SELECT COUNT(*) FROM operators", [], |r| r.get(0))?))
            .await
    }

    async fn insert_operator(&self, op: Operator) -> Result<(), StoreError> {
        self.with(move |c| {
            let inserted = c.execute(
                "INSERT OR IGNORE INTO operators (username, password_hash, role, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    op.username,
                    op.password_hash,
                    op.role.as_str(),
                    op.created_at
                ],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!(
                    "operator {} already exists",
                    op.username
                )));
            }
            Ok(())
        })
        .await
    }

    async fn operator(&self, username: &str) -> Result<Option<Operator>, StoreError> {
        let username = username.to_string();
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT username, password_hash, role, created_at FROM operators WHERE username = ?1",
                [username],
                operator_row,
            )
            .optional()?)
        })
        .await
    }

    async fn list_operators(&self) -> Result<Vec<Operator>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT username, password_hash, role, created_at FROM operators ORDER BY username",
            )?;
            let rows = stmt.query_map([], operator_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn set_operator_password(&self, username: &str, hash: &str) -> Result<bool, StoreError> {
        let (username, hash) = (username.to_string(), hash.to_string());
        self.with(move |c| {
            let tx = c.transaction()?;
            let changed = tx.execute(
                "UPDATE operators SET password_hash = ?2 WHERE username = ?1",
                params![username, hash],
            )?;
            tx.execute("DELETE FROM sessions WHERE username = ?1", [&username])?;
            tx.commit()?;
            Ok(changed == 1)
        })
        .await
    }

    async fn set_operator_role(&self, username: &str, role: Role) -> Result<bool, StoreError> {
        let username = username.to_string();
        self.with(move |c| {
            let tx = c.transaction()?;
            let changed = tx.execute(
                "UPDATE operators SET role = ?2 WHERE username = ?1",
                params![username, role.as_str()],
            )?;
            keep_an_admin(
                &tx,
                &format!("{username} is the last admin; make another operator admin first"),
            )?;
            tx.commit()?;
            Ok(changed == 1)
        })
        .await
    }

    async fn delete_operator(&self, username: &str) -> Result<bool, StoreError> {
        let username = username.to_string();
        self.with(move |c| {
            let tx = c.transaction()?;
            let removed = tx.execute("DELETE FROM operators WHERE username = ?1", [&username])?;
            keep_an_admin(
                &tx,
                &format!("{username} is the last admin and cannot be removed"),
            )?;
            tx.commit()?;
            Ok(removed == 1)
        })
        .await
    }

    async fn insert_session(
        &self,
        token_hash: &str,
        username: &str,
        csrf_token: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let (t, u, csrf) = (
            token_hash.to_string(),
            username.to_string(),
            csrf_token.to_string(),
        );
        self.with(move |c| {
            c.execute(
                "INSERT INTO sessions (token_hash, username, csrf_token, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![t, u, csrf, now, expires_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let token_hash = token_hash.to_string();
        self.with(move |c| {
            c.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
            Ok(c.query_row(
                "SELECT s.username, o.role, s.csrf_token, s.expires_at
                 FROM sessions s JOIN operators o ON o.username = s.username
                 WHERE s.token_hash = ?1",
                [token_hash],
                |r| {
                    let role: String = r.get(1)?;
                    Ok(Session {
                        username: r.get(0)?,
                        role: Role::parse(&role).unwrap_or(Role::Viewer),
                        csrf_token: r.get(2)?,
                        expires_at: r.get(3)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let token_hash = token_hash.to_string();
        self.with(move |c| {
            c.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
            Ok(())
        })
        .await
    }
}

/// Refuses (rolling back the transaction) a change that leaves no admin.
fn keep_an_admin(tx: &rusqlite::Transaction<'_>, why: &str) -> Result<(), StoreError> {
    let admins: i64 = tx.query_row(
        "SELECT COUNT(*) FROM operators WHERE role = 'admin'",
        [],
        |r| r.get(0),
    )?;
    if admins == 0 {
        return Err(StoreError::Conflict(why.to_string()));
    }
    Ok(())
}
