//! `passwords`: each listed account's `/etc/shadow` hash becomes the configured one, set with
//! `chpasswd -e` (hash on stdin). Runs after `users`, so an account added and given a
//! password in one commit converges in one run. Hashes never appear in reports or logs.

use apiary_proto::system::Passwords;

use super::converged::Converged;
use super::{Context, Outcome, Policy};
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
        let mut converged = Converged::load(ctx.state_dir, NAME);
        let mut out = Vec::new();
        for item in &self.spec.items {
            if (ctx.stop_requested)() {
                break;
            }
            let user = item.user.as_str();
            let fingerprint = Converged::fingerprint(&[&item.hash]);
            let outcome = match current_hash(user) {
                Err(e) => Outcome::failed(NAME, user.into(), e),
                Ok(current) if current == item.hash => {
                    converged.record(user, &fingerprint);
                    Outcome::unchanged(NAME, user.into(), format!("password of {user} is set"))
                }
                Ok(_) => match account_tools::set_password_hash(user, &item.hash) {
                    Err(e) => Outcome::failed(
                        NAME,
                        user.into(),
                        format!("cannot set the password of {user}: {e}"),
                    ),
                    Ok(()) => {
                        let drift = converged.was(user, &fingerprint);
                        converged.record(user, &fingerprint);
                        let message = if drift {
                            format!("password of {user} was changed on the device; restored")
                        } else {
                            format!("password of {user} set")
                        };
                        Outcome::changed(NAME, user.into(), drift, message)
                    }
                },
            };
            out.push(outcome);
        }
        converged.save_or_warn();
        out
    }
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
