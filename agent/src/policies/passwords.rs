//! `passwords`: each listed account's `/etc/shadow` hash becomes the configured one, set with
//! `chpasswd -e` (hash on stdin). Runs after `users`, so an account added and given a
//! password in one commit converges in one run. Hashes never appear in reports or logs.

use apiary_proto::policy::InBundle;
use apiary_proto::policy::passwords::{PasswordHash, Passwords};

use super::converged::Converged;
use super::{Context, ItemPolicy, Outcome};
use crate::system::{account_tools, accounts};

const NAME: &str = Passwords::NAME;

impl ItemPolicy for Passwords {
    type Item = PasswordHash;
    type Tools = ();

    fn items(&self) -> &[PasswordHash] {
        &self.items
    }

    fn item_name(item: &PasswordHash) -> String {
        item.user.clone()
    }

    fn converge_item(
        &self,
        _: &(),
        item: &PasswordHash,
        _: &Context<'_>,
        record: &mut Converged,
        out: &mut Vec<Outcome>,
    ) -> Result<(), String> {
        out.push(converge_password(item, record)?);
        Ok(())
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
        .map_err(|e| format!("cannot read: {e}"))?
        .is_none()
    {
        return Err(format!("user {user} does not exist"));
    }
    // /etc/shadow is root's alone.
    if !crate::privilege::current().is_root() {
        return crate::elevated::shadow_hash(user);
    }
    let shadow = accounts::read_file("/etc/shadow").map_err(|e| format!("cannot read: {e}"))?;
    // An account without a shadow line gets one from chpasswd.
    Ok(accounts::shadow_hash(&shadow, user)
        .unwrap_or_default()
        .to_string())
}
