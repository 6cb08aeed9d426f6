//! Dashboard operators and their sessions: a part of the store of its own, so the main
//! [`super::Store`] trait stays about the fleet.

use async_trait::async_trait;
use serde::Serialize;

use super::{StoreError, Timestamp};

/// What an operator may do in the dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Read only: every form that changes something is refused.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// An operator account.
#[derive(Clone, Debug, Serialize)]
pub struct Operator {
    pub username: String,
    #[serde(skip)]
    pub password_hash: String,
    pub role: Role,
    pub created_at: Timestamp,
}

/// A signed-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    pub username: String,
    pub role: Role,
    /// The token every form of this session must carry.
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

/// Operators and sessions.
#[async_trait]
pub trait OperatorStore: Send + Sync + 'static {
    async fn operator_count(&self) -> Result<i64, StoreError>;
    /// Adds an operator; an existing name is [`StoreError::Conflict`].
    async fn insert_operator(&self, operator: Operator) -> Result<(), StoreError>;
    async fn operator(&self, username: &str) -> Result<Option<Operator>, StoreError>;
    async fn list_operators(&self) -> Result<Vec<Operator>, StoreError>;
    /// Sets a password and ends the operator's sessions; false if there is no such operator.
    async fn set_operator_password(&self, username: &str, hash: &str) -> Result<bool, StoreError>;
    /// Changes a role; false if there is no such operator. Demoting the last admin is
    /// [`StoreError::Conflict`]: someone must be able to manage the rest.
    async fn set_operator_role(&self, username: &str, role: Role) -> Result<bool, StoreError>;
    /// Removes an operator and its sessions; false if there is none. Removing the last
    /// admin is [`StoreError::Conflict`].
    async fn delete_operator(&self, username: &str) -> Result<bool, StoreError>;
    async fn insert_session(
        &self,
        token_hash: &str,
        username: &str,
        csrf_token: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;
    /// The unexpired session with this token hash (expired ones are purged on the way).
    async fn session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError>;
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;
}
