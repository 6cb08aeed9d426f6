//! `passwords`: each listed account's `/etc/shadow` hash becomes the configured one, set with
//! `chpasswd -e` (hash on stdin). Runs after `users`, so an account added and given a
//! password in one commit converges in one run. Hashes never appear in reports or logs.

use apiary_proto::system::{PasswordHash, Passwords};

use super::converged::Converged;
use super::{Context, Outcome, Policy, each_item};
use crate::system::{account_tools, accounts};

const NAME: &str = "passwords";

/// Converges [`Passwords`].
pub struct PasswordsPolicy<'a> {
    pub spec: &'a Passwords,
}

impl Policy for PasswordsPolicy<'_> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn converge(&self, ctx: &Context<'_>) -> Vec<Outcome> {
        each_item(ctx, NAME, &self.spec.items, |i| &i.user, converge_password)
    }
}

fn converge_password(item: &PasswordHash, converged: &mut Converged) -> Result<Outcome, String> {
    let user = item.user.as_str();
    let fingerprint = Converged::fingerprint(&[&item.hash]);
    if current_hash(user)? == item.hash {
        converged.record(user, &fingerprint);
        return Ok(Outcome::unchanged(
            NAME,
            user.into(),
            format!("password of {user} is set"),
        ));
    }
    account_tools::set_password_hash(user, &item.hash)
        .map_err(|e| format!("cannot set the password of {user}: {e}"))?;
    let drift = converged.was(user, &fingerprint);
    converged.record(user, &fingerprint);
    let message = if drift {
        format!("password of {user} was changed on the device; restored")
    } else {
        format!("password of {user} set")
    };
    Ok(Outcome::changed(NAME, user.into(), drift, message))
}

/// The account's current hash; a missing account is an error naming it.
fn current_hash(user: &str) -> Result<String, String> {
    if accounts::account(user)
        .map_err(|e| format!("cannot read /etc/passwd: {e}"))?
        .is_none()
    {
        return Err(format!("user {user} does not exist"));
    }
    let shadow = std::fs::read_to_string("/etc/shadow")
        .map_err(|e| format!("cannot read /etc/shadow: {e}"))?;
    // An account without a shadow line gets one from chpasswd.
    Ok(accounts::shadow_hash(&shadow, user)
        .unwrap_or_default()
        .to_string())
}
