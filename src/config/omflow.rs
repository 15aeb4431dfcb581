//! `[omflow]`: the Basic Auth credential OMFLOW sends.

use argon2::password_hash::PasswordHash;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OmflowSettings {
    pub username: Option<String>,
    pub password_hash: Option<SecretString>,
    pub password: Option<SecretString>,
}

impl OmflowSettings {
    /// True when OMFLOW's Basic Auth credentials are configured.
    pub fn is_configured(&self) -> bool {
        self.username.is_some() && (self.password_hash.is_some() || self.password.is_some())
    }

    /// Checks what serde cannot, naming the key at fault. The hash's cost is
    /// checked against the password caps where the credential is built.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(user) = &self.username {
            if user.is_empty() || user.contains(':') {
                return Err(ConfigError::new(
                    "omflow.username must be non-empty and must not contain ':'",
                ));
            }
        }
        if let Some(hash) = &self.password_hash {
            if !is_argon2_phc(hash.expose_secret()) {
                return Err(ConfigError::new(
                    "omflow.password_hash is not an Argon2 PHC string: \
                     not a recognised password hash",
                ));
            }
        }
        if matches!(&self.password, Some(p) if p.expose_secret().is_empty()) {
            return Err(ConfigError::new("omflow.password must not be empty"));
        }
        // Two passwords for one account: whichever won, the operator would not
        // know which one OMFLOW must send, nor whether the other still works.
        if self.password.is_some() && self.password_hash.is_some() {
            return Err(ConfigError::new(
                "both omflow.password and omflow.password_hash are set; set only one \
                 (preferably omflow.password_hash, from `hr-bridge hash-password`)",
            ));
        }
        Ok(())
    }
}

/// An Argon2 (id, i or d) PHC string with valid parameters and a hash, as the
/// password module reads them.
fn is_argon2_phc(text: &str) -> bool {
    let text = text.trim();
    if !text.starts_with("$argon2") {
        return false;
    }
    let Ok(phc) = PasswordHash::new(text) else {
        return false;
    };
    argon2::Algorithm::try_from(phc.algorithm).is_ok()
        && argon2::Params::try_from(&phc).is_ok()
        && phc.hash.is_some()
}

#[cfg(test)]
mod tests {
    use super::is_argon2_phc;

    #[test]
    fn only_argon2_phc_strings_with_a_hash_pass() {
        let good = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$\
                    Yl7B3jLdQ2cE3BqH0dJZ1Qo5mXq2Gq0m8QmYkq6cNbk";
        assert!(is_argon2_phc(good));
        assert!(is_argon2_phc(&format!(" {good}\n")));
        for bad in [
            "",
            "plain",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
            "$argon2id$v=19$m=1,t=2,p=1$c2FsdHNhbHQ$Yl7B3jLdQ2cE3BqH0dJZ1Qo5mXq2Gq0m8QmYkq6cNbk",
            "$argon2x$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$Yl7B3jLdQ2cE3BqH0dJZ1Qo5mXq2Gq0m8QmYkq6cNbk",
            "$2b$12$abcdefghijklmnopqrstuuJ3ZyZ1f7wYkq6cNbkYl7B3jLdQ2cE3",
        ] {
            assert!(!is_argon2_phc(bad), "{bad}");
        }
    }
}
